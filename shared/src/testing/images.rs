//! Image files for attachment tests: a photo carrying GPS metadata and a decompression bomb.

use img_parts::jpeg::Jpeg;
use img_parts::{Bytes, ImageEXIF};

/// What [`photo_with_gps`] hides in its EXIF segment, to look for in what members are served.
pub const GPS_MARKER: &[u8] = b"GPSLatitude 48.8584 N";

/// A `width` × `height` JPEG whose EXIF says where it was taken.
pub fn photo_with_gps(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&pixels).expect("encodes");
    let mut photo = Jpeg::from_bytes(Bytes::from(jpeg)).expect("parses");
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(GPS_MARKER);
    photo.set_exif(Some(Bytes::from(exif)));
    photo.encoder().bytes().to_vec()
}

/// A few hundred bytes of PNG claiming `width` × `height` RGBA pixels: decoding it would need gigabytes.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut small = Vec::new();
    image::RgbaImage::new(8, 8)
        .write_to(&mut std::io::Cursor::new(&mut small), image::ImageFormat::Png)
        .expect("encodes");
    // IHDR is the first chunk: length (4) and type (4) at 8..16, width and height at 16..24, CRC at 29..33.
    small[16..20].copy_from_slice(&width.to_be_bytes());
    small[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&small[12..29]);
    small[29..33].copy_from_slice(&crc.to_be_bytes());
    small
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
