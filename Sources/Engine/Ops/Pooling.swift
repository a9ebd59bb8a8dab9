extension Tensor {
    /// Non-overlapping average pooling of NCHW input (H and W divisible by `size`).
    /// Written as reshape + mean, so its gradients of every order come for free.
    public func avgPool2d(_ size: Int = 2) -> Tensor {
        precondition(rank == 4 && shape[2] % size == 0 && shape[3] % size == 0,
                     "avgPool2d(\(size)) needs NCHW with H, W divisible by \(size), got \(shape)")
        return reshaped([shape[0], shape[1], shape[2] / size, size, shape[3] / size, size]).mean(axes: [3, 5])
    }

    /// Non-overlapping max pooling of NCHW input (H and W divisible by `size`).
    public func maxPool2d(_ size: Int = 2) -> Tensor {
        precondition(rank == 4 && shape[2] % size == 0 && shape[3] % size == 0,
                     "maxPool2d(\(size)) needs NCHW with H, W divisible by \(size), got \(shape)")
        return reshaped([shape[0], shape[1], shape[2] / size, size, shape[3] / size, size]).max(axes: [3, 5])
    }
}
