import Engine
import Foundation
import TestSupport
import XCTest

/// Forward values and gradients against PyTorch 2.15 (`../shared/fixtures/ops.safetensors`),
/// read through the project's own safetensors reader.
final class FixtureParityTests: XCTestCase {
    func meta(_ name: String) throws -> [String: Any] {
        let s = try Fixtures.ops.metadata[name]!
        return try! JSONSerialization.jsonObject(with: s.data(using: .utf8)!) as! [String: Any]
    }

    /// Runs `op` on the fixture's inputs and checks y and the gradients of sum(y · dy).
    func checkOp(_ name: String, inputs: [String], _ op: ([Tensor]) -> Tensor,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        let xs = try inputs.map { try Fixtures.get("\(name).\($0)").requiringGrad() }
        let y = op(xs)
        assertClose(y, try Fixtures.get("\(name).y"), "\(name) forward", file: file, line: line)
        let loss = try (y * Fixtures.get("\(name).dy")).sum()
        let grads = loss.gradients(wrt: xs)
        for (k, input) in inputs.enumerated() {
            assertClose(grads[k], try Fixtures.get("\(name).d\(input)"), "\(name) d\(input)", file: file, line: line)
        }
    }

    func testConv2dCases() throws {
        for name in ["conv_k5_s2_p2", "conv_k3_s2_p1", "conv_k7_s1_p3", "conv_k5_s1_p2", "conv_k7_s1_p0_nobias"] {
            let m = try meta(name)
            let k = try Fixtures.get("\(name).weight").shape[2]
            let geo = ConvGeometry(kernel: k, stride: m["stride"] as! Int, padding: m["padding"] as! Int)
            let hasBias = try Fixtures.ops["\(name).bias"] != nil
            try checkOp(name, inputs: hasBias ? ["x", "weight", "bias"] : ["x", "weight"]) { t in
                Tensor.conv2d(t[0], weight: t[1], bias: hasBias ? t[2] : nil, geo)
            }
        }
    }

    func testConvTranspose2dCases() throws {
        for name in ["convt_k5_s2_p2_op1", "convt_k5_s1_p2_nobias", "convt_k4_s2_p1"] {
            let m = try meta(name)
            let k = try Fixtures.get("\(name).weight").shape[2]
            let geo = ConvGeometry(kernel: k, stride: m["stride"] as! Int, padding: m["padding"] as! Int)
            let op = m["output_padding"] as! Int
            let hasBias = try Fixtures.ops["\(name).bias"] != nil
            try checkOp(name, inputs: hasBias ? ["x", "weight", "bias"] : ["x", "weight"]) { t in
                Tensor.convTranspose2d(t[0], weight: t[1], bias: hasBias ? t[2] : nil, geo, outputPadding: (op, op))
            }
        }
    }

    func testLinear() throws {
        try checkOp("linear", inputs: ["x", "weight", "bias"]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
    }

    func testActivations() throws {
        try checkOp("leaky_relu_0.2", inputs: ["x"]) { $0[0].leakyRelu(0.2) }
        try checkOp("sigmoid", inputs: ["x"]) { $0[0].sigmoid() }
        try checkOp("tanh", inputs: ["x"]) { $0[0].tanh() }
        try checkOp("softplus", inputs: ["x"]) { $0[0].softplus() }
        try checkOp("log_sigmoid", inputs: ["x"]) { $0[0].logSigmoid() }
    }

    func testBatchNormStatistics() throws {
        for (name, axes) in [("batchnorm2d_train", [0, 2, 3]), ("batchnorm1d_train", [0])] {
            let x0 = try Fixtures.get("\(name).x")
            let bshape = x0.rank == 4 ? [1, -1, 1, 1] : [1, -1]
            try checkOp(name, inputs: ["x", "weight", "bias"]) { t in
                let (mean, variance) = t[0].moments(axes: axes)
                let xhat = (t[0] - mean) / (variance + 1e-5).sqrt()
                return xhat * t[1].reshaped(bshape) + t[2].reshaped(bshape)
            }
            // Running statistics after one step from (0, 1), momentum 0.1, unbiased variance.
            let mean = x0.mean(axes: axes)
            let unbiased = x0.variance(axes: axes, unbiased: true)
            assertClose(mean * 0.1, try Fixtures.get("\(name).running_mean"), "\(name) running_mean")
            assertClose(unbiased * 0.1 + 0.9, try Fixtures.get("\(name).running_var"), "\(name) running_var")
        }
    }

    func testBinaryCrossEntropyWithLogits() throws {
        let logits = try Fixtures.get("bce_with_logits_mean.logits").requiringGrad()
        let target = try Fixtures.get("bce_with_logits_mean.target")
        let loss = (logits.softplus() - logits * target).mean()
        assertClose(loss.reshaped([1]), try Fixtures.get("bce_with_logits_mean.y"), "bce value")
        assertClose(loss.gradients(wrt: [logits])[0], try Fixtures.get("bce_with_logits_mean.dlogits"), "bce gradient")
    }

    func testCrossEntropy() throws {
        let logits = try Fixtures.get("cross_entropy_mean.logits").requiringGrad()
        let labels = try Fixtures.get("cross_entropy_mean.labels").scalars.map { Int($0) }
        let loss = -logits.logSoftmax(axis: 1).gatherColumns(labels).mean()
        assertClose(loss.reshaped([1]), try Fixtures.get("cross_entropy_mean.y"), "cross-entropy value")
        assertClose(loss.gradients(wrt: [logits])[0], try Fixtures.get("cross_entropy_mean.dlogits"), "cross-entropy gradient")
    }

    func testWGANGradientPenaltySecondOrder() throws {
        let p = "wgan_gp_penalty"
        let names = ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias"]
        let params = try names.map { try Fixtures.get("\(p).param.\($0)").requiringGrad() }
        let alpha = try Fixtures.get("\(p).alpha")
        let interp = try alpha * Fixtures.get("\(p).real") + (1 - alpha) * Fixtures.get("\(p).fake")
        assertClose(interp, try Fixtures.get("\(p).interpolates"), "interpolates")
        let x = try Fixtures.get("\(p).interpolates").requiringGrad()
        let geo = ConvGeometry(kernel: 3, stride: 2, padding: 1)
        var h = Tensor.conv2d(x, weight: params[0], bias: params[1], geo).leakyRelu(0.2)
        h = Tensor.conv2d(h, weight: params[2], bias: params[3], geo).leakyRelu(0.2)
        let out = Tensor.linear(h.flattened(), weight: params[4], bias: params[5])
        assertClose(out, try Fixtures.get("\(p).critic_out"), "critic output")
        let dx = out.sum().gradients(wrt: [x], createGraph: true)[0]
        assertClose(dx, try Fixtures.get("\(p).dout_dx"), rtol: 1e-3, "d critic / dx")
        let norms = dx.square().sum(axes: [1, 2, 3]).sqrt()
        let penalty = (norms - 1).square().mean()
        assertClose(penalty.reshaped([1]), try Fixtures.get("\(p).penalty"), rtol: 1e-3, "penalty")
        let grads = penalty.gradients(wrt: params)
        for (k, n) in names.enumerated() {
            assertClose(grads[k], try Fixtures.get("\(p).dpenalty.\(n)"), rtol: 1e-3, atol: 1e-5, "dpenalty/d\(n)")
        }
    }

    func testDoubleBackwardThroughConvTransposeAndTanh() throws {
        let p = "double_backward_convt_tanh"
        let names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
        let params = try names.map { try Fixtures.get("\(p).param.\($0)").requiringGrad() }
        let z = try Fixtures.get("\(p).z").requiringGrad()
        var h = Tensor.convTranspose2d(z, weight: params[0], bias: params[1], ConvGeometry(kernel: 4, stride: 2, padding: 1)).tanh()
        h = Tensor.conv2d(h, weight: params[2], bias: params[3], ConvGeometry(kernel: 3, padding: 1))
        let out = Tensor.linear(h.flattened(), weight: params[4], bias: params[5])
        assertClose(out, try Fixtures.get("\(p).out"), "out")
        let dz = out.sum().gradients(wrt: [z], createGraph: true)[0]
        assertClose(dz, try Fixtures.get("\(p).dout_dz"), rtol: 1e-3, "dout/dz")
        let penalty = dz.square().sum()
        assertClose(penalty.reshaped([1]), try Fixtures.get("\(p).penalty"), rtol: 1e-3, "penalty")
        let grads = penalty.gradients(wrt: params)
        for (k, n) in names.enumerated() {
            assertClose(grads[k], try Fixtures.get("\(p).dpenalty.\(n)"), rtol: 1e-3, atol: 1e-5, "dpenalty/d\(n)")
        }
    }
}
