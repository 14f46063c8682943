//! Dataset statistics (MONAI's datastats keys and nnU-Net's fingerprint figures), computed per
//! case in parallel and summarised with Polars. Empty until its issue lands.
