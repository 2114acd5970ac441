//! The association's optional logo: an image file named in the configuration, read and
//! checked once at start (size, extension, and that the content is what the extension says),
//! then served from memory at `/logo`.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The largest logo accepted: a header image, not a photo.
pub const MAX_BYTES: u64 = 512 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoKind {
    Png,
    Jpeg,
    WebP,
    Svg,
}

impl LogoKind {
    fn from_extension(path: &Path) -> Option<LogoKind> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "png" => Some(LogoKind::Png),
            "jpg" | "jpeg" => Some(LogoKind::Jpeg),
            "webp" => Some(LogoKind::WebP),
            "svg" => Some(LogoKind::Svg),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            LogoKind::Png => "image/png",
            LogoKind::Jpeg => "image/jpeg",
            LogoKind::WebP => "image/webp",
            LogoKind::Svg => "image/svg+xml",
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogoKind::Png => "PNG",
            LogoKind::Jpeg => "JPEG",
            LogoKind::WebP => "WebP",
            LogoKind::Svg => "SVG",
        }
    }

    /// Whether the file's first bytes are those of this kind of image.
    fn matches(self, bytes: &[u8]) -> bool {
        match self {
            LogoKind::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            LogoKind::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            LogoKind::WebP => {
                bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
            }
            LogoKind::Svg => looks_like_svg(bytes),
        }
    }
}

/// An SVG is text: UTF-8 whose first markup is an XML declaration, a comment, a doctype or
/// the `<svg` element itself, and which has an `<svg` element.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let opens_as_markup = ["<?xml", "<svg", "<!--", "<!DOCTYPE svg", "<!doctype svg"]
        .iter()
        .any(|prefix| start.starts_with(prefix));
    opens_as_markup && text.contains("<svg")
}

/// Why the configured logo cannot be used; said at start, before anything is served.
#[derive(Debug, thiserror::Error)]
pub enum LogoError {
    #[error("the logo {path} cannot be read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the logo {path} must be a .png, .svg, .jpg, .jpeg or .webp file (its name says which)"
    )]
    UnknownType { path: String },
    #[error("the logo {path} weighs {size} bytes: at most {max} KiB are accepted", max = MAX_BYTES / 1024)]
    TooLarge { path: String, size: u64 },
    #[error("the logo {path} is empty")]
    Empty { path: String },
    #[error("the logo {path} is named as a {kind} image, but its content is not one")]
    NotWhatItSays { path: String, kind: &'static str },
}

/// The logo, read once and kept in memory.
#[derive(Debug)]
pub struct Logo {
    pub bytes: bytes::Bytes,
    pub kind: LogoKind,
    /// A strong validator of the content, for conditional requests.
    pub etag: String,
}

impl Logo {
    pub fn load(path: &str) -> Result<Logo, LogoError> {
        let shown = path.to_string();
        let file_path = Path::new(path);
        let kind = LogoKind::from_extension(file_path).ok_or_else(|| LogoError::UnknownType {
            path: shown.clone(),
        })?;
        let unreadable = |source| LogoError::Unreadable {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(file_path).map_err(unreadable)?;
        let size = file.metadata().map_err(unreadable)?.len();
        if size > MAX_BYTES {
            return Err(LogoError::TooLarge { path: shown, size });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // The file may grow between the two looks: never read past the limit.
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        Logo::from_bytes(shown, kind, bytes)
    }

    fn from_bytes(path: String, kind: LogoKind, bytes: Vec<u8>) -> Result<Logo, LogoError> {
        if bytes.len() as u64 > MAX_BYTES {
            return Err(LogoError::TooLarge {
                path,
                size: bytes.len() as u64,
            });
        }
        if bytes.is_empty() {
            return Err(LogoError::Empty { path });
        }
        if !kind.matches(&bytes) {
            return Err(LogoError::NotWhatItSays {
                path,
                kind: kind.name(),
            });
        }
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
        Ok(Logo {
            bytes: bytes.into(),
            kind,
            etag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, bytes: &[u8]) -> Result<Logo, LogoError> {
        let kind = LogoKind::from_extension(Path::new(name)).expect("a known extension");
        Logo::from_bytes(name.into(), kind, bytes.to_vec())
    }

    #[test]
    fn each_kind_is_known_by_its_first_bytes() {
        let png = check("a.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        assert_eq!(png.kind.content_type(), "image/png");
        let jpeg = check("a.JPG", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]).unwrap();
        assert_eq!(jpeg.kind.content_type(), "image/jpeg");
        let webp = check("a.webp", b"RIFF\x24\0\0\0WEBPVP8 ").unwrap();
        assert_eq!(webp.kind.content_type(), "image/webp");
        for svg in [
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            "\u{feff}<?xml version=\"1.0\"?>\n<svg/>",
            "  <!-- drawn by hand -->\n<svg></svg>",
        ] {
            let logo = check("a.svg", svg.as_bytes()).unwrap();
            assert_eq!(logo.kind.content_type(), "image/svg+xml");
        }
    }

    #[test]
    fn content_that_is_not_what_the_name_says_is_refused() {
        let html = b"<html><body>not an image</body></html>";
        for name in ["a.png", "a.jpeg", "a.webp", "a.svg"] {
            let error = check(name, html).unwrap_err();
            assert!(
                error.to_string().contains("its content is not one"),
                "{error}"
            );
        }
        let png_named_svg = check("a.svg", b"\x89PNG\r\n\x1a\n").unwrap_err();
        assert!(matches!(
            png_named_svg,
            LogoError::NotWhatItSays { kind: "SVG", .. }
        ));
        assert!(matches!(check("a.png", b""), Err(LogoError::Empty { .. })));
    }

    #[test]
    fn other_extensions_are_refused_by_name() {
        for name in ["logo.gif", "logo", "logo.png.exe", "logo.html"] {
            assert!(matches!(
                Logo::load(name),
                Err(LogoError::UnknownType { .. })
            ));
        }
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_the_limit_said() {
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_BYTES as usize + 1, 0);
        let error = check("big.png", &big).unwrap_err();
        assert!(error.to_string().contains("at most 512 KiB"), "{error}");
    }
}
