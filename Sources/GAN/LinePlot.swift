import Foundation

/// Line charts rendered to RGB pixels (no plotting library exists for Swift on Linux): axes,
/// ticks, a secondary x axis (epochs under iterations) and a legend, in a 5×7 bitmap font.
public struct LinePlot {
    public typealias Series = (name: String, x: [Float], y: [Float], color: (UInt8, UInt8, UInt8))
    public var title: String
    public var xLabel: String
    /// Iterations per epoch: draws a second axis in epochs.
    public var secondaryXScale: Float?
    public var secondaryXLabel: String
    public var series: [Series]
    public var width = 900, height = 420

    public init(title: String, xLabel: String, secondaryXScale: Float? = nil, secondaryXLabel: String = "",
                series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.secondaryXScale = secondaryXScale
        self.secondaryXLabel = secondaryXLabel
        self.series = series
    }

    public func render() -> PNGImage {
        var c = Canvas(width: width, height: height)
        let left = 92, right = width - 20, top = 36, bottom = height - 96
        let xs = series.flatMap(\.x).filter(\.isFinite), ys = series.flatMap(\.y).filter(\.isFinite)
        guard let x0 = xs.min(), let x1 = xs.max(), var y0 = ys.min(), var y1 = ys.max() else { return c.image }
        if y1 - y0 < 1e-6 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        let spanX = Swift.max(x1 - x0, 1e-6)
        func px(_ x: Float) -> Int { left + Int((x - x0) / spanX * Float(right - left)) }
        func py(_ y: Float) -> Int { bottom - Int((y - y0) / (y1 - y0) * Float(bottom - top)) }

        c.text(title, x: left, y: 10, color: (20, 20, 20))
        let yTicks = LinePlot.ticks(y0, y1)
        for v in yTicks.values {   // y ticks and grid
            let y = py(v)
            c.line(left, y, right, y, (225, 225, 225))
            let label = LinePlot.label(v, decimals: yTicks.decimals)
            c.text(label, x: left - 6 - label.count * 12, y: y - 7, color: (60, 60, 60))
        }
        // Each x axis: ticks and their labels, then its name on a row of its own at the right.
        func xAxis(at axisY: Int, ticks: (values: [Float], decimals: Int), scale: Float, name: String, _ color: (UInt8, UInt8, UInt8)) {
            for v in ticks.values {
                let x = px(v * scale)
                c.line(x, axisY, x, axisY + 5, color)
                let label = LinePlot.label(v, decimals: ticks.decimals)
                c.text(label, x: x - label.count * 6, y: axisY + 8, color: color)
            }
            c.text(name, x: right - name.count * 12, y: axisY + 26, color: color)
        }
        xAxis(at: bottom, ticks: LinePlot.ticks(x0, x0 + spanX), scale: 1, name: xLabel, (60, 60, 60))
        if let per = secondaryXScale, per > 0 {   // epoch axis, under the iteration axis
            c.line(left, bottom + 48, right, bottom + 48, (120, 60, 160))
            xAxis(at: bottom + 48, ticks: LinePlot.ticks(x0 / per, (x0 + spanX) / per), scale: per, name: secondaryXLabel, (120, 60, 160))
        }
        c.line(left, top, left, bottom, (40, 40, 40))
        c.line(left, bottom, right, bottom, (40, 40, 40))
        for s in series {
            var prev: (Int, Int)?
            for (x, y) in zip(s.x, s.y) {
                guard x.isFinite, y.isFinite else { prev = nil; continue }
                let p = (px(x), py(y))
                if let q = prev { c.line(q.0, q.1, p.0, p.1, s.color) }
                prev = p
            }
        }
        for (k, s) in series.enumerated() {   // legend
            let y = top + 6 + k * 20
            c.fill(x: right - 200, y: y, w: 14, h: 14, s.color)
            c.text(s.name, x: right - 180, y: y, color: (20, 20, 20))
        }
        return c.image
    }

    /// Tick positions as a reader expects them: every multiple of one step of 1, 2, 2.5 or 5 × 10ᵏ
    /// inside [lo, hi], the finest step that gives at most `maxCount` ticks (and at least two
    /// whenever the range holds two multiples of a step), with the decimals that step needs.
    public static func ticks(_ lo: Float, _ hi: Float, maxCount: Int = 7) -> (values: [Float], decimals: Int) {
        let lo = Double(lo), hi = Double(hi)
        guard lo.isFinite, hi.isFinite, hi > lo, maxCount >= 2 else { return (lo.isFinite ? [Float(lo)] : [], 0) }
        var exponent = Int((log10((hi - lo) / Double(maxCount))).rounded(.down))
        while true {
            let unit = pow(10, Double(exponent))
            for (mantissa, extraDecimal) in [(1.0, 0), (2.0, 0), (2.5, 1), (5.0, 0)] {
                let step = mantissa * unit
                // Within Float's precision of a multiple counts as on it: the ends come in as Float.
                let first = (lo / step - 1e-6).rounded(.up), last = (hi / step + 1e-6).rounded(.down)
                guard last - first + 1 <= Double(maxCount) else { continue }
                let values = stride(from: first, through: last, by: 1).map { Float($0 * step) }
                return (values, Swift.max(0, -exponent + extraDecimal))
            }
            exponent += 1
        }
    }

    /// A tick's label with the decimals of its axis's step: 0.6, 0.8, 1.0, not 0.6, 0.8, 1; in
    /// exponent notation where that would take more than seven characters.
    public static func label(_ v: Float, decimals: Int) -> String {
        let fixed = String(format: "%.\(decimals)f", v == 0 ? 0 : v)   // no "-0.0"
        return fixed.count <= 7 ? fixed : String(format: "%.2g", v)
    }
}

/// An RGB pixel buffer with lines, rectangles and text.
struct Canvas {
    var image: PNGImage
    init(width: Int, height: Int) { image = PNGImage(width: width, height: height, channels: 3, fill: 255) }

    mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
        let i = (y * image.width + x) * 3
        image.pixels[i] = c.0; image.pixels[i + 1] = c.1; image.pixels[i + 2] = c.2
    }

    /// Bresenham's line.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8)) {
        var x = x0, y = y0
        let dx = Swift.abs(x1 - x0), dy = -Swift.abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            set(x, y, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: (UInt8, UInt8, UInt8)) {
        for j in y..<(y + h) { for i in x..<(x + w) { set(i, j, c) } }
    }

    /// Text at twice the font size (10×14 pixels a glyph, 12 a character cell).
    mutating func text(_ s: String, x: Int, y: Int, color: (UInt8, UInt8, UInt8)) {
        var cx = x
        for ch in s.uppercased() {
            if let rows = Font5x7.glyphs[ch] {
                for (r, bits) in rows.enumerated() {
                    for col in 0..<5 where bits & (0x10 >> col) != 0 {
                        fill(x: cx + col * 2, y: y + r * 2, w: 2, h: 2, color)
                    }
                }
            }
            cx += 12
        }
    }
}

/// The classic 5×7 character-ROM shapes, one byte per row (bit 4 is the left column).
enum Font5x7 {
    static let glyphs: [Character: [UInt8]] = [
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "A": [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ".": [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], "-": [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        "+": [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00], "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], ":": [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        "/": [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00], " ": [0, 0, 0, 0, 0, 0, 0],
    ]
}
