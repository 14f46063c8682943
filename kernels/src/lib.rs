//! Array compute for every stage, with a CPU (rayon) path and a CUDA path: resampling,
//! Gaussian window blending, connected components, distance transforms, and segmentation
//! metrics. It knows nothing of burn or of files. Empty until its issue lands.
