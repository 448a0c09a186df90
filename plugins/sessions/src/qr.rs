//! QR codes as PNG images (`GET /sessions/{session}/qr?format=png`).

use gateway_sdk::ApiError;

/// Pixels per QR module.
const SCALE: usize = 8;
/// The quiet zone scanners need around the code, in modules.
const BORDER: usize = 4;

pub(crate) fn render_png(data: &str) -> Result<Vec<u8>, ApiError> {
    let code = qrcode::QrCode::new(data.as_bytes())
        .map_err(|e| ApiError::internal(format!("cannot encode QR code: {e}")))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * BORDER) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == qrcode::Color::Dark {
                for dy in 0..SCALE {
                    let row = (y + BORDER) * SCALE + dy;
                    let start = row * side + (x + BORDER) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| ApiError::internal(format!("cannot write PNG: {e}")))?;
        w.write_image_data(&pixels)
            .map_err(|e| ApiError::internal(format!("cannot write PNG: {e}")))?;
    }
    Ok(out)
}
