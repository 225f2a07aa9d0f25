//! Content types of uploads and downloads: detection, normalisation and FLORA's allowed list.
//!
//! Detection order for an upload: the caller's explicit type, then magic bytes (`infer`),
//! then the file extension (`mime_guess`). Names are normalised (`audio/x-wav` → `audio/wav`,
//! `image/jpg` → `image/jpeg`) before they are compared with FLORA's list.

use crate::error::Error;
use crate::kinds::MediaKind;

/// The content types FLORA accepts for assets (its asset docs), with their usual extension:
/// every kind's list in the one table of kinds.
pub(crate) fn allowed() -> impl Iterator<Item = (&'static str, &'static str)> {
    MediaKind::ALL
        .iter()
        .flat_map(|k| k.content_types().iter().copied())
}

/// The types FLORA accepts for `kind`, for messages.
fn accepted(kind: MediaKind) -> String {
    let types: Vec<&str> = kind.content_types().iter().map(|(t, _)| *t).collect();
    types.join(", ")
}

/// Lower case, no parameters, common aliases folded into FLORA's spelling.
pub(crate) fn normalise(content_type: &str) -> String {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav".to_owned(),
        "image/jpg" | "image/pjpeg" => "image/jpeg".to_owned(),
        "audio/mp3" | "audio/x-mp3" | "audio/mpeg3" => "audio/mpeg".to_owned(),
        "image/heic-sequence" => "image/heic".to_owned(),
        "image/heif-sequence" => "image/heif".to_owned(),
        _ => base,
    }
}

/// The type of some bytes: magic bytes first, then the file name's extension.
pub(crate) fn detect(head: &[u8], file_name: Option<&str>) -> Option<String> {
    if let Some(t) = infer::get(head) {
        return Some(normalise(t.mime_type()));
    }
    let ext_guess = file_name.and_then(|n| mime_guess::from_path(n).first());
    ext_guess.map(|m| normalise(m.essence_str()))
}

/// The type of the bytes of a typed upload (`upload_image`, …): from their signature only. A
/// file whose bytes match no type is refused, whatever its extension says (a text file named
/// `face.png` is not an image); `UploadOptions::content_type` is the way out.
pub(crate) fn detect_typed(head: &[u8], name: &str, kind: MediaKind) -> Result<String, Error> {
    match infer::get(head) {
        Some(t) => Ok(normalise(t.mime_type())),
        None => {
            let named = mime_guess::from_path(name)
                .first()
                .map(|m| format!(" (its name says `{}`)", normalise(m.essence_str())))
                .unwrap_or_default();
            Err(Error::InvalidInput(format!(
                "the bytes of {name}{named} are not {} FLORA accepts ({}): they match no \
                 known file signature, and a name's extension alone is not trusted; if it is \
                 one, set `UploadOptions::content_type`",
                kind.noun(),
                accepted(kind)
            )))
        }
    }
}

/// The extension to give a file of this type (`png` for `image/png`).
pub(crate) fn extension(content_type: &str) -> Option<&'static str> {
    let ct = normalise(content_type);
    if let Some((_, ext)) = allowed().find(|(t, _)| *t == ct) {
        return Some(ext);
    }
    match ct.as_str() {
        "text/plain" => Some("txt"),
        "application/json" => Some("json"),
        _ => mime_guess::get_mime_extensions_str(&ct).and_then(|e| e.first().copied()),
    }
}

/// The extension a downloaded file gets from the type its host announced: one of FLORA's
/// media extensions (of `kind`'s family, when the output's kind is known), `txt` or `json` for
/// a download of unknown kind, else the neutral `bin`. Never an executable or page type
/// (`.bat`, `.hta`, `.htm`), whatever the host says.
pub(crate) fn saved_extension(content_type: &str, kind: Option<MediaKind>) -> &'static str {
    let ct = normalise(content_type);
    let media = match kind {
        Some(k) => k.content_types().iter().copied().find(|(t, _)| *t == ct),
        None => allowed().find(|(t, _)| *t == ct),
    };
    match (media, kind, ct.as_str()) {
        (Some((_, ext)), _, _) => ext,
        (None, None, "text/plain") => "txt",
        (None, None, "application/json") => "json",
        _ => "bin",
    }
}

/// Every extension [`saved_extension`] can give a download of `kind` (to check, before a run,
/// every name an output might get).
#[cfg(feature = "cli")]
pub(crate) fn saved_extensions(kind: Option<MediaKind>) -> Vec<&'static str> {
    let mut exts: Vec<&'static str> = match kind {
        Some(k) => k.content_types().iter().map(|(_, e)| *e).collect(),
        None => allowed().map(|(_, e)| e).collect(),
    };
    exts.push("bin");
    if kind.is_none() {
        exts.extend(["txt", "json"]);
    }
    exts.sort_unstable();
    exts.dedup();
    exts
}

fn allowed_list() -> String {
    allowed().map(|(t, _)| t).collect::<Vec<_>>().join(", ")
}

/// Checks a detected or given type before any request: it must belong to `wanted` (when the
/// call is typed) and, unless the caller set it explicitly (the escape hatch for types FLORA
/// adds later), be on FLORA's list.
pub(crate) fn check(
    what: &str,
    content_type: &str,
    wanted: Option<MediaKind>,
    explicit: bool,
) -> Result<(), Error> {
    if let Some(w) = wanted
        && MediaKind::of_content_type(content_type) != Some(w)
    {
        return Err(Error::InvalidInput(format!(
            "{what} is `{content_type}`, not {}: allowed here are {} (set \
             `UploadOptions::content_type` if the detection is wrong)",
            w.noun(),
            accepted(w)
        )));
    }
    if !explicit && !allowed().any(|(t, _)| t == content_type) {
        return Err(Error::InvalidInput(format!(
            "{what} is `{content_type}`, which FLORA does not accept (allowed: {}); set \
             `UploadOptions::content_type` to send it anyway",
            allowed_list()
        )));
    }
    Ok(())
}

/// `name` with an extension: FLORA (and many hosts) refuse files without one.
pub(crate) fn with_extension(name: &str, content_type: &str) -> String {
    let has_ext = std::path::Path::new(name)
        .extension()
        .is_some_and(|e| !e.is_empty());
    match (has_ext, extension(content_type)) {
        (false, Some(ext)) => format!("{name}.{ext}"),
        _ => name.to_owned(),
    }
}

/// A file name safe on every OS from untrusted text (an output id, a URL segment): letters,
/// digits, `-`, `_` and `.` only, no leading dot, no device name, at most 100 bytes.
pub(crate) fn safe_file_stem(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s = s.trim_start_matches('.').trim_end_matches('.').to_owned();
    s.truncate(100);
    let stem = s.split('.').next().unwrap_or("").to_ascii_lowercase();
    let reserved = matches!(stem.as_str(), "con" | "prn" | "aux" | "nul")
        || ((stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if s.is_empty() {
        "output".to_owned()
    } else if reserved {
        format!("_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of kinds read through detection: what the fake serves for a kind sniffs as
    /// that kind's type, and the example file docs show has an extension of its kind.
    #[test]
    fn each_kinds_placeholder_and_example_file_are_detected_as_that_kind() {
        for kind in MediaKind::ALL {
            let (bytes, ct) = kind.placeholder();
            assert_eq!(detect(bytes, None).as_deref(), Some(ct), "{kind}");
            let example = detect(b"", Some(kind.example_file()));
            assert!(
                kind.content_types()
                    .iter()
                    .any(|(t, _)| Some(*t) == example.as_deref()),
                "{kind}: the example file {} is not of its kind",
                kind.example_file()
            );
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
    const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt ";

    #[test]
    fn magic_bytes_then_extension() {
        assert_eq!(detect(PNG, Some("x.mp4")).as_deref(), Some("image/png"));
        assert_eq!(detect(MP4, None).as_deref(), Some("video/mp4"));
        assert_eq!(detect(WAV, None).as_deref(), Some("audio/wav"));
        assert_eq!(
            detect(b"hello", Some("a.pdf")).as_deref(),
            Some("application/pdf")
        );
        assert_eq!(
            detect(b"hello", Some("a.HEIC")).as_deref(),
            Some("image/heic")
        );
        assert_eq!(detect(b"hello", None), None);
    }

    #[test]
    fn normalises_aliases() {
        assert_eq!(normalise("Audio/X-WAV; codec=1"), "audio/wav");
        assert_eq!(normalise("image/jpg"), "image/jpeg");
        assert_eq!(normalise("audio/mp3"), "audio/mpeg");
    }

    #[test]
    fn family_and_allowed_list_are_checked() {
        let e = check("clip.mp4", "video/mp4", Some(MediaKind::Image), false).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`video/mp4`, not an image"), "{msg}");
        assert!(msg.contains("image/png"), "{msg}");
        assert!(check("a", "image/png", Some(MediaKind::Image), false).is_ok());
        assert!(check("a", "image/bmp", Some(MediaKind::Image), false).is_err());
        assert!(check("a", "image/bmp", Some(MediaKind::Image), true).is_ok());
        assert!(check("a", "video/mp4", Some(MediaKind::Image), true).is_err());
        assert!(check("a", "application/pdf", Some(MediaKind::Document), false).is_ok());
    }

    #[test]
    fn names_get_extensions_and_are_made_safe() {
        assert_eq!(with_extension("face", "image/png"), "face.png");
        assert_eq!(with_extension("face.png", "image/png"), "face.png");
        assert_eq!(with_extension("clip", "video/quicktime"), "clip.mov");
        assert_eq!(safe_file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_stem("output image"), "output_image");
        assert_eq!(safe_file_stem("con"), "_con");
        assert_eq!(safe_file_stem("COM1.txt"), "_COM1.txt");
        assert_eq!(safe_file_stem("..."), "output");
        assert_eq!(safe_file_stem(""), "output");
    }
}
