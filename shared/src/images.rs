//! What the attachment processor makes of an uploaded image: its size, a thumbnail, and a copy without the
//! metadata (EXIF GPS, XMP) that would tell members where a photo was taken. Decoding is bounded, so a
//! decompression bomb or a file that lies about its type is refused, never crashed on.

use std::io::Cursor;

use image::{GenericImageView, ImageFormat, ImageReader, Limits};
use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::webp::{CHUNK_EXIF, CHUNK_XMP, WebP};
use img_parts::{Bytes, ImageEXIF};

/// The longest side of a thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Images larger than this on either side are refused before any pixel is decoded.
pub const MAX_SIDE: u32 = 10_000;
/// What decoding one image may allocate (a 25 MB upload may claim gigabytes of pixels).
pub const MAX_DECODE_BYTES: u64 = 200 * 1024 * 1024;
const THUMBNAIL_QUALITY: u8 = 80;

#[derive(Debug)]
pub struct Derived {
    pub width: u32,
    pub height: u32,
    /// JPEG, at most [`THUMBNAIL_SIDE`] on the long side.
    pub thumbnail: Vec<u8>,
    /// The upload, byte for byte, without its metadata segments.
    pub clean: Vec<u8>,
}

/// The image's format, if `content_type` is one the processor handles.
fn format_of(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Derives what members are served from an upload declared as `content_type`; `Err` says why it is refused.
pub fn derive(bytes: &[u8], content_type: &str) -> Result<Derived, String> {
    let declared = format_of(content_type).ok_or_else(|| format!("{content_type} is not an image type"))?;
    let actual = image::guess_format(bytes).map_err(|_| "the file is not an image".to_owned())?;
    if actual != declared {
        return Err(format!("the file is {actual:?}, not the declared {content_type}"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), declared);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| format!("the image cannot be decoded safely: {e}"))?;
    let (width, height) = decoded.dimensions();
    let mut thumbnail = Vec::new();
    // Never upscaled: a small image is its own thumbnail.
    let small = if width.max(height) > THUMBNAIL_SIDE {
        decoded.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgb8()
    } else {
        decoded.to_rgb8()
    };
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, THUMBNAIL_QUALITY)
        .encode_image(&small)
        .map_err(|e| format!("the thumbnail cannot be encoded: {e}"))?;
    let clean = strip_metadata(bytes, declared)?;
    Ok(Derived { width, height, thumbnail, clean })
}

/// The file without EXIF, XMP and text metadata; pixels untouched. GIF carries no EXIF.
fn strip_metadata(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>, String> {
    let bytes = Bytes::copy_from_slice(bytes);
    let invalid = |e: img_parts::Error| format!("the image's structure is invalid: {e}");
    let stripped = match format {
        ImageFormat::Jpeg => {
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(invalid)?;
            // APP1 holds EXIF and XMP, APP13 Photoshop's IPTC (which may name a place).
            jpeg.remove_segments_by_marker(markers::APP1);
            jpeg.remove_segments_by_marker(markers::APP13);
            jpeg.encoder().bytes()
        }
        ImageFormat::Png => {
            let mut png = Png::from_bytes(bytes).map_err(invalid)?;
            for kind in [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt"] {
                png.remove_chunks_by_type(kind);
            }
            png.encoder().bytes()
        }
        ImageFormat::WebP => {
            let mut webp = WebP::from_bytes(bytes).map_err(invalid)?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(CHUNK_EXIF);
            webp.remove_chunks_by_id(CHUNK_XMP);
            webp.encoder().bytes()
        }
        _ => bytes,
    };
    Ok(stripped.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::images::{GPS_MARKER, photo_with_gps, png_bomb};

    fn has_gps(bytes: &[u8]) -> bool {
        bytes.windows(GPS_MARKER.len()).any(|w| w == GPS_MARKER)
    }

    #[test]
    fn a_photo_gets_a_small_thumbnail_and_loses_its_gps() {
        let photo = photo_with_gps(1200, 800);
        assert!(has_gps(&photo));

        let derived = derive(&photo, "image/jpeg").unwrap();
        assert_eq!((derived.width, derived.height), (1200, 800));
        let thumbnail = image::load_from_memory(&derived.thumbnail).unwrap();
        assert_eq!(thumbnail.dimensions(), (320, 213));
        assert!(!has_gps(&derived.clean));
        assert_eq!(image::load_from_memory(&derived.clean).unwrap().dimensions(), (1200, 800));

        let small = derive(&photo_with_gps(96, 64), "image/jpeg").unwrap();
        assert_eq!(image::load_from_memory(&small.thumbnail).unwrap().dimensions(), (96, 64), "never upscaled");
    }

    #[test]
    fn lies_corruption_and_bombs_are_refused() {
        assert!(derive(b"%PDF-1.7 not an image", "image/png").is_err());
        assert!(derive(&photo_with_gps(10, 10), "image/png").unwrap_err().contains("not the declared"));
        let mut truncated = photo_with_gps(64, 64);
        truncated.truncate(200);
        assert!(derive(&truncated, "image/jpeg").is_err());
        for (width, height) in [(50_000, 50_000), (9_000, 9_000)] {
            let refused = derive(&png_bomb(width, height), "image/png").unwrap_err();
            assert!(refused.contains("cannot be decoded safely"), "{width}x{height}: {refused}");
        }
    }
}
