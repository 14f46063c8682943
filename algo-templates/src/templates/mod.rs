//! Algorithm templates: the rules that turn dataset statistics into network and training
//! configurations. So far nnU-Net's topology rule.

pub mod topology;
