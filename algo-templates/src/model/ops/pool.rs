//! 3D max pooling with kernel = stride, PyTorch's `max_pool3d(x, k)` semantics.

use burn::tensor::Tensor;

/// Max pooling over non-overlapping `factors` windows of a `[n, c, x, y, z]` tensor.
///
/// Like PyTorch's `max_pool3d(kernel_size=factors)`, trailing voxels that do not fill a
/// whole window are dropped. Built from one reshape and three `max_dim`s, so its gradient
/// flows to the maximum of each window on every backend (rank 6 at most: flex and tch).
pub fn max_pool3d(x: Tensor<5>, factors: [usize; 3]) -> Tensor<5> {
    let [n, c, d, h, w] = x.dims();
    let [fd, fh, fw] = factors;
    assert!(
        fd > 0 && fh > 0 && fw > 0,
        "max_pool3d factors must be positive"
    );
    let (od, oh, ow) = (d / fd, h / fh, w / fw);
    let x = if (od * fd, oh * fh, ow * fw) == (d, h, w) {
        x
    } else {
        x.slice([0..n, 0..c, 0..od * fd, 0..oh * fh, 0..ow * fw])
    };
    x.reshape([n * c * od, fd, oh, fh, ow, fw])
        .max_dim(5)
        .max_dim(3)
        .max_dim(1)
        .reshape([n, c, od, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn takes_the_maximum_of_each_window_and_drops_the_remainder() {
        let device = Device::flex();
        // 1x1x3x2x2 volume, values 0..12 in C order; pool by (2, 2, 1).
        let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let x = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, 3, 2, 2]);
        let y = max_pool3d(x, [2, 2, 1]);
        assert_eq!(y.dims(), [1, 1, 1, 1, 2]);
        // Window over x in {0,1}, y in {0,1} at z: max is the (1,1,z) voxel = 6 + z.
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![6.0, 7.0]);
    }

    #[test]
    fn gradient_reaches_only_the_window_maxima() {
        let device = Device::flex().autodiff();
        let values: Vec<f32> = (0..8).map(|v| ((v * 5) % 8) as f32).collect();
        let x = Tensor::<1>::from_floats(values.as_slice(), &device)
            .reshape([1, 1, 2, 2, 2])
            .require_grad();
        let grads = max_pool3d(x.clone(), [2, 2, 2]).sum().backward();
        let grad = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let argmax = values.iter().position(|&v| v == 7.0).unwrap();
        for (i, g) in grad.iter().enumerate() {
            assert_eq!(*g, if i == argmax { 1.0 } else { 0.0 });
        }
    }
}
