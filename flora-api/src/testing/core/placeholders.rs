//! Placeholder media the fake serves for outputs and stores for uploads: the smallest valid
//! file of each kind.

use bytes::Bytes;

use crate::wire::MediaType;

/// Bytes served for placeholder media: a tiny valid file of each kind (a 1×1 PNG, an MP4 of
/// no frames, a WAV of no samples, a one-page PDF), so what a sandbox saves opens.
pub(super) fn placeholder_bytes(kind: &MediaType) -> (Bytes, &'static str, &'static str) {
    match kind {
        MediaType::VideoUrl => (Bytes::from_static(PLACEHOLDER_MP4), "video/mp4", "mp4"),
        MediaType::AudioUrl => (Bytes::from_static(PLACEHOLDER_WAV), "audio/wav", "wav"),
        MediaType::DocumentUrl => (
            Bytes::from_static(PLACEHOLDER_PDF),
            "application/pdf",
            "pdf",
        ),
        _ => (Bytes::from_static(PLACEHOLDER_PNG), "image/png", "png"),
    }
}

const PLACEHOLDER_PNG: &[u8] = b"\x89PNG\x0d\x0a\x1a\x0a\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\x9cc`\x00\x02\x00\x00\x05\x00\x01z^\xab?\x00\x00\x00\x00IEND\xaeB`\x82";
const PLACEHOLDER_MP4: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41\x00\x00\x00tmoov\x00\x00\x00lmvhd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
const PLACEHOLDER_WAV: &[u8] = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00";
const PLACEHOLDER_PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>\nendobj\nxref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \ntrailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n184\n%%EOF\n";
