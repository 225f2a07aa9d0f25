//! Shared test helpers: a fast client, a hand-made technique, and (`hostile`) a misbehaving
//! server on loopback.
#![allow(dead_code)]

#[cfg(feature = "cli")]
pub mod floret;
pub mod hostile;
#[cfg(feature = "models")]
pub mod models;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flora_api::{
    Client, ClientBuilder, Error, ImageUrl, OutputSet, PollPolicy, RunInput, SlotInfo, Technique,
    TechniqueInfo,
};
use serde_json::{Value, json};

pub const KEY: &str = "sk_test_SUPERSECRET_0123456789";

/// Everything this thread's tracing logs (TRACE and up, no colours) while its guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Starts capturing; the capture ends when the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The head of a PNG (signature and `IHDR`): what detection sees as `image/png`.
pub const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// `len` bytes that sniff as a PNG: its head, then `fill`.
pub fn png(len: usize, fill: u8) -> Vec<u8> {
    let mut png = PNG_HEAD.to_vec();
    png.resize(len.max(PNG_HEAD.len()), fill);
    png
}

/// `server.uri()` with a trailing slash: the mock serves at the root, not at `/api/v1`.
pub fn root(base: &str) -> String {
    format!("{}/", base.trim_end_matches('/'))
}

/// A client for `server` with millisecond backoff and polling.
pub fn fast(base: &str) -> ClientBuilder {
    Client::builder()
        .api_key(KEY)
        .base_url(root(base))
        .max_retries(2)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .timeout(Duration::from_secs(5))
        .poll_policy(
            PollPolicy::default()
                .initial_delay(Duration::from_millis(5))
                .interval(Duration::from_millis(5))
                .max_interval(Duration::from_millis(10))
                .deadline(Duration::from_secs(5)),
        )
}

/// A technique written by hand the way the generator writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Upscale {
    pub image: ImageUrl,
    pub prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpscaleOutputs {
    pub image: ImageUrl,
    pub caption: String,
}

impl Technique for Upscale {
    const INFO: TechniqueInfo = TechniqueInfo::new(
        "upscale",
        "tech_upscale",
        0.05,
        &[
            SlotInfo::new("input_image", "imageUrl", false),
            SlotInfo::new("prompt", "text", true),
        ],
        &[
            SlotInfo::new("output_image", "imageUrl", false),
            SlotInfo::new("caption", "text", false),
        ],
    );
    type Outputs = UpscaleOutputs;
    fn inputs(&self) -> Vec<RunInput> {
        let mut v = Vec::with_capacity(2);
        RunInput::push(&mut v, "input_image", "imageUrl", &self.image);
        RunInput::push(&mut v, "prompt", "text", &self.prompt);
        v
    }
    fn parse_outputs(outputs: &mut OutputSet) -> Result<UpscaleOutputs, Error> {
        Ok(UpscaleOutputs {
            image: outputs.take("output_image")?,
            caption: outputs.take("caption")?,
        })
    }
}

pub fn upscale() -> Upscale {
    Upscale {
        image: ImageUrl::parse("https://example.com/in.png").unwrap(),
        prompt: None,
    }
}

pub fn run_json(id: &str, status: &str) -> Value {
    json!({"run_id": id, "status": status, "progress": 0, "created_at": 1})
}

pub fn completed_json(id: &str) -> Value {
    json!({
        "run_id": id, "status": "completed", "progress": 100, "created_at": 1, "completed_at": 2,
        "charged_cost": 0.05,
        "outputs": [
            {"output_id": "output_image", "type": "imageUrl", "url": "https://media.flora.ai/o.png"},
            {"output_id": "caption", "type": "text", "url": "a sharp cat"},
            {"output_id": "bonus", "type": "videoUrl", "url": "https://media.flora.ai/b.mp4"}
        ]
    })
}

pub fn error_json(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}
