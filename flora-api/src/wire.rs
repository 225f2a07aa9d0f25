//! The API's JSON objects, decoded tolerantly.
//!
//! The server has spoken both snake_case and camelCase for the same objects (fact sheet §4),
//! added fields over time and grown its enums. So every field here accepts both spellings,
//! unknown fields are kept in `extra`, and every enum is open: an unknown value decodes to
//! `Unknown(..)`/`Other(..)` and serialises back unchanged.
//!
//! Decoding goes through a private `Raw*` struct that has one `Option` per spelling, then
//! picks the first present. (Serde aliases would fail on an object carrying two spellings.)

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::kinds::MediaKind;

/// Unknown JSON fields, kept so nothing the server sends is lost.
pub type Extra = Map<String, Value>;

macro_rules! open_enum {
    (
        $(#[$doc:meta])* $name:ident, $other:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this version of the crate does not know; kept verbatim.
            $other(String),
        }

        impl $name {
            /// Every spelling this version knows, aliases included, with its value.
            #[doc(hidden)]
            pub const SPELLINGS: &'static [(&'static str, Self)] = &[
                $( ($wire, Self::$variant), $( ($alias, Self::$variant), )* )+
            ];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::$other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $wire $(| $alias)* => Self::$variant, )+
                    _ => Self::$other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::$other(s) => s,
                    other => other.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use open_enum;

open_enum!(
    /// Where a run is in its life: `pending → running → completed | failed`.
    RunStatus, Unknown {
        /// Queued, not started.
        Pending = "pending",
        /// Started, not finished.
        Running = "running",
        /// Finished with outputs.
        Completed = "completed",
        /// Finished without outputs; see the run's error code.
        Failed = "failed",
    }
);

impl RunStatus {
    /// `completed` or `failed`: polling stops here.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

macro_rules! media_type_enum {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {
        open_enum!(
            /// The type of a technique slot or run output: a media kind
            /// ([`media_kind`](Self::media_kind)), text, or a type this version does not know.
            /// Snake spellings are accepted.
            MediaType, Unknown {
                $(
                    #[doc = concat!("A URL of ", $name, " ([`MediaKind::", stringify!($kind), "`]).")]
                    $url = $camel | $snake,
                )*
                /// Plain text.
                Text = "text",
            }
        );

        impl MediaType {
            /// The media kind, or `None` for text and types this version does not know.
            pub fn media_kind(&self) -> Option<MediaKind> {
                match self.class() {
                    SlotClass::Media(kind) => Some(kind),
                    SlotClass::Text | SlotClass::Unknown(_) => None,
                }
            }

            /// Media, text or unknown: for the places that treat the three differently,
            /// matched exhaustively.
            pub(crate) fn class(&self) -> SlotClass<'_> {
                match self {
                    $(MediaType::$url => SlotClass::Media(MediaKind::$kind),)*
                    MediaType::Text => SlotClass::Text,
                    MediaType::Unknown(wire) => SlotClass::Unknown(wire),
                }
            }
        }

        impl From<MediaKind> for MediaType {
            fn from(kind: MediaKind) -> MediaType {
                match kind {
                    $(MediaKind::$kind => MediaType::$url,)*
                }
            }
        }
    };
}
crate::kinds::for_each_media_kind!(media_type_enum);

/// What a slot or output type is ([`MediaType::class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotClass<'a> {
    /// A URL of a media kind.
    Media(MediaKind),
    /// Plain text.
    Text,
    /// A type this version does not know, by its wire spelling.
    Unknown(&'a str),
}

open_enum!(
    /// Why a run failed (`error_code` on a failed run): techniques send lower-case codes,
    /// generations upper-case ones. Open: a code this version does not know is kept in
    /// `Other`. [`retry_class`](Self::retry_class) says what to do about each.
    RunErrorCode, Other {
        /// The model timed out; transient, a new run may succeed.
        ModelTimeout = "model_timeout",
        /// Blocked by the safety filter.
        SafetyBlocked = "safety_blocked",
        /// An input URL could not be fetched.
        InputUnreachable = "input_unreachable",
        /// FLORA failed internally.
        InternalError = "internal_error",
        /// The model provider failed.
        ProviderError = "provider_error",
        /// The provider timed out.
        GenerationProviderTimeout = "GENERATION_PROVIDER_TIMEOUT",
        /// The generation did not start.
        GenerationFailedToStart = "GENERATION_FAILED_TO_START",
        /// The GPU provider failed (often a safety refusal in disguise: see the message).
        GpuProviderError = "GPU_PROVIDER_ERROR",
        /// The result could not be uploaded.
        GenerationFailedToUpload = "GENERATION_FAILED_TO_UPLOAD",
        /// A generic generation error.
        GenerationGenericError = "GENERATION_GENERIC_ERROR",
        /// The generation's state could not be updated.
        GenerationFailedToUpdate = "GENERATION_FAILED_TO_UPDATE",
        /// FLORA's server failed.
        ServerError = "SERVER_ERROR",
        /// The result could not be fetched.
        GenerationFailedToGet = "GENERATION_FAILED_TO_GET",
        /// A step before the generation failed.
        GenerationPregenerationFailed = "GENERATION_PREGENERATION_FAILED",
        /// A step after the generation failed.
        GenerationPostgenerationFailed = "GENERATION_POSTGENERATION_FAILED",
        /// Mapping the provider's answer failed.
        GenerationMapAfterRequestFailed = "GENERATION_MAP_AFTER_REQUEST_FAILED",
        /// A service downstream failed.
        GenerationDownstreamServiceError = "GENERATION_DOWNSTREAM_SERVICE_ERROR",
        /// The provider's queue is too long.
        GenerationQueueTooLarge = "GENERATION_QUEUE_TOO_LARGE",
        /// The provider answered with something unusable.
        GenerationInvalidProviderResponse = "GENERATION_INVALID_PROVIDER_RESPONSE",
        /// The provider's queue does not move.
        GenerationQueueNotMoving = "GENERATION_QUEUE_NOT_MOVING",
        /// No result came back (sometimes a safety refusal: see the message).
        GenerationNoResult = "GENERATION_NO_RESULT",
        /// The provider is switched off for now.
        GenerationCircuitBreakerOpen = "GENERATION_CIRCUIT_BREAKER_OPEN",
        /// Polling the provider failed.
        GenerationModalPollError = "GENERATION_MODAL_POLL_ERROR",
        /// An audio generation failed.
        AudioGenerationError = "AUDIO_GENERATION_ERROR",
        /// The provider's status could not be read.
        GenerationProviderFailedToGetStatus = "GENERATION_PROVIDER_FAILED_TO_GET_STATUS",
        /// The prompt was moderated.
        GenerationPromptModerated = "GENERATION_PROMPT_MODERATED",
        /// The parameters were refused.
        GenerationInvalidParams = "GENERATION_INVALID_PARAMS",
        /// The model refused.
        LlmRefusal = "LLM_REFUSAL",
        /// An input URL was refused.
        GenerationInvalidUrl = "GENERATION_INVALID_URL",
        /// An input was refused.
        GenerationInputValidation = "GENERATION_INPUT_VALIDATION",
        /// The provider's endpoint does not exist.
        GenerationEndpointNotFound = "GENERATION_ENDPOINT_NOT_FOUND",
        /// Preparing the provider's request failed.
        GenerationMapBeforeRequestFailed = "GENERATION_MAP_BEFORE_REQUEST_FAILED",
        /// The provider does not support this.
        GenerationProviderNotSupported = "GENERATION_PROVIDER_NOT_SUPPORTED",
        /// Not enough credits.
        BillingNotEnoughCredits = "BILLING_NOT_ENOUGH_CREDITS",
        /// The credits limit is reached.
        BillingCreditsLimitExceeded = "BILLING_CREDITS_LIMIT_EXCEEDED",
        /// The run would pass the limit.
        BillingWouldExceedLimit = "BILLING_WOULD_EXCEED_LIMIT",
        /// Credits could not be reserved.
        BillingFailedToReserveCredits = "BILLING_FAILED_TO_RESERVE_CREDITS",
        /// The generation was not paid.
        GenerationNotPaid = "GENERATION_NOT_PAID",
        /// The generation was cancelled.
        GenerationCancelled = "GENERATION_CANCELLED",
    }
);

fn first<T>(options: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    options.into_iter().flatten().next()
}

/// One input or output slot of a technique schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    /// The slot id used on the wire (`input_image`).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Media kind.
    #[serde(rename = "type")]
    pub kind: MediaType,
    /// Human description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required aspect ratio, e.g. `"1:1"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specified_aspect_ratio: Option<String>,
    /// Required duration in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specified_duration: Option<f64>,
    /// The input may be omitted.
    pub optional: bool,
    /// The value is an element id rather than a URL.
    pub accepts_element: bool,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawSlot {
    id: String,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: MediaType,
    description: Option<String>,
    specified_aspect_ratio: Option<String>,
    #[serde(rename = "specifiedAspectRatio")]
    specified_aspect_ratio_camel: Option<String>,
    specified_duration: Option<f64>,
    #[serde(rename = "specifiedDuration")]
    specified_duration_camel: Option<f64>,
    optional: Option<bool>,
    accepts_element: Option<bool>,
    #[serde(rename = "acceptsElement")]
    accepts_element_camel: Option<bool>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawSlot::deserialize(d)?;
        Ok(Slot {
            id: r.id,
            name: r.name,
            kind: r.kind,
            description: r.description,
            specified_aspect_ratio: first([
                r.specified_aspect_ratio,
                r.specified_aspect_ratio_camel,
            ]),
            specified_duration: first([r.specified_duration, r.specified_duration_camel]),
            optional: r.optional.unwrap_or(false),
            accepts_element: first([r.accepts_element, r.accepts_element_camel]).unwrap_or(false),
            extra: r.extra,
        })
    }
}

/// A technique's schema: what it is called, what it costs and which inputs and outputs it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TechniqueSchema {
    /// `tech_…` id.
    pub technique_id: String,
    /// Slug, when the server sends one (list items sometimes do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cost per run in USD (old deployments sent integer credits).
    pub run_cost: Option<f64>,
    /// Input slots; `None` when the server left them out of a list item.
    pub inputs: Option<Vec<Slot>>,
    /// Output slots; `None` when the server left them out of a list item.
    pub outputs: Option<Vec<Slot>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
    /// The object exactly as the server sent it.
    #[serde(skip)]
    raw: Value,
}

#[derive(Deserialize)]
struct RawTechnique {
    technique_id: Option<String>,
    #[serde(rename = "techniqueId")]
    technique_id_camel: Option<String>,
    slug: Option<String>,
    name: Option<String>,
    description: Option<String>,
    run_cost: Option<f64>,
    #[serde(rename = "runCost")]
    run_cost_camel: Option<f64>,
    inputs: Option<Vec<Slot>>,
    outputs: Option<Vec<Slot>>,
    #[serde(flatten)]
    extra: Extra,
}

impl TechniqueSchema {
    /// The technique object exactly as received (both casings, unknown fields and all).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The slug: `slug` when present, else the technique id without its `tech_` prefix.
    pub fn slug_or_derived(&self) -> &str {
        match &self.slug {
            Some(s) if !s.is_empty() => s,
            _ => self
                .technique_id
                .strip_prefix("tech_")
                .unwrap_or(&self.technique_id),
        }
    }
}

impl<'de> Deserialize<'de> for TechniqueSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = Value::deserialize(d)?;
        let r = RawTechnique::deserialize(&raw).map_err(D::Error::custom)?;
        let technique_id = first([r.technique_id, r.technique_id_camel])
            .ok_or_else(|| D::Error::missing_field("technique_id"))?;
        Ok(TechniqueSchema {
            name: r.name.unwrap_or_else(|| technique_id.clone()),
            technique_id,
            slug: r.slug,
            description: r.description,
            run_cost: first([r.run_cost, r.run_cost_camel]),
            inputs: r.inputs,
            outputs: r.outputs,
            extra: r.extra,
            raw,
        })
    }
}

/// One output of a run. For `text` outputs `url` holds the text itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutput {
    /// Output slot id.
    pub output_id: String,
    /// Media kind.
    #[serde(rename = "type")]
    pub kind: MediaType,
    /// A URL, or the text content for text outputs. Not validated as a URL.
    pub url: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawRunOutput {
    output_id: Option<String>,
    #[serde(rename = "outputId")]
    output_id_camel: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<MediaType>,
    url: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for RunOutput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = RawRunOutput::deserialize(d)?;
        Ok(RunOutput {
            output_id: first([r.output_id, r.output_id_camel, r.id])
                .ok_or_else(|| D::Error::missing_field("output_id"))?,
            kind: r.kind.unwrap_or_else(|| MediaType::Unknown(String::new())),
            url: r.url.ok_or_else(|| D::Error::missing_field("url"))?,
            extra: r.extra,
        })
    }
}

/// A run as returned by create and poll (`<Run>` in the spec).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// `run_…` id.
    pub run_id: String,
    /// Lifecycle status.
    pub status: RunStatus,
    /// 0–100 when the server reports it.
    pub progress: Option<f64>,
    /// Creation time as sent (unit not documented).
    pub created_at: Option<f64>,
    /// Start time as sent.
    pub started_at: Option<f64>,
    /// Completion time as sent.
    pub completed_at: Option<f64>,
    /// Outputs, present once completed.
    pub outputs: Vec<RunOutput>,
    /// Failure code, on failed runs.
    pub error_code: Option<RunErrorCode>,
    /// Failure message, on failed runs.
    pub error_message: Option<String>,
    /// What the run cost in USD.
    pub charged_cost: Option<f64>,
    /// Where to poll, as the server suggests (only followed on the base URL's origin).
    pub poll_url: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawRun {
    run_id: Option<String>,
    #[serde(rename = "runId")]
    run_id_camel: Option<String>,
    technique_run_id: Option<String>,
    #[serde(rename = "techniqueRunId")]
    technique_run_id_camel: Option<String>,
    id: Option<String>,
    status: Option<RunStatus>,
    progress: Option<f64>,
    created_at: Option<f64>,
    #[serde(rename = "createdAt")]
    created_at_camel: Option<f64>,
    started_at: Option<f64>,
    #[serde(rename = "startedAt")]
    started_at_camel: Option<f64>,
    completed_at: Option<f64>,
    #[serde(rename = "completedAt")]
    completed_at_camel: Option<f64>,
    outputs: Option<Vec<RunOutput>>,
    error_code: Option<RunErrorCode>,
    #[serde(rename = "errorCode")]
    error_code_camel: Option<RunErrorCode>,
    error_message: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message_camel: Option<String>,
    charged_cost: Option<f64>,
    #[serde(rename = "chargedCost")]
    charged_cost_camel: Option<f64>,
    poll_url: Option<String>,
    #[serde(rename = "pollUrl")]
    poll_url_camel: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl Run {
    /// `estimated_seconds` when the server sent one (documented on `POST /runs/technique`'s
    /// answer; read here from the nested route's answer too, in either casing).
    pub fn estimated_seconds(&self) -> Option<f64> {
        ["estimated_seconds", "estimatedSeconds"]
            .iter()
            .find_map(|k| self.extra.get(*k).and_then(Value::as_f64))
            .filter(|s| s.is_finite() && *s >= 0.0)
    }
}

impl<'de> Deserialize<'de> for Run {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = RawRun::deserialize(d)?;
        let mut extra = r.extra;
        // Kept visible for run-history items, where it is a field of its own.
        if let Some(id) = &r.technique_run_id {
            extra.insert("technique_run_id".into(), Value::String(id.clone()));
        }
        Ok(Run {
            run_id: first([
                r.run_id,
                r.run_id_camel,
                r.technique_run_id,
                r.technique_run_id_camel,
                r.id,
            ])
            .ok_or_else(|| D::Error::missing_field("run_id"))?,
            status: r.status.ok_or_else(|| D::Error::missing_field("status"))?,
            progress: r.progress,
            created_at: first([r.created_at, r.created_at_camel]),
            started_at: first([r.started_at, r.started_at_camel]),
            completed_at: first([r.completed_at, r.completed_at_camel]),
            outputs: r.outputs.unwrap_or_default(),
            error_code: first([r.error_code, r.error_code_camel]),
            error_message: first([r.error_message, r.error_message_camel]),
            charged_cost: first([r.charged_cost, r.charged_cost_camel]),
            poll_url: first([r.poll_url, r.poll_url_camel]),
            extra,
        })
    }
}

/// The `POST /runs/technique` response: no status, poll for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedRun {
    /// `run_…` id.
    pub run_id: String,
    /// `generation`, `technique` or `action`, kept as sent.
    #[serde(rename = "type")]
    pub run_type: Option<String>,
    /// Estimated time to completion in seconds.
    pub estimated_seconds: Option<f64>,
    /// Cost charged so far in USD.
    pub charged_cost: Option<f64>,
    /// Where to poll.
    pub poll_url: Option<String>,
    /// Project id, when any.
    pub project_id: Option<String>,
    /// Unknown fields (`model`, `technique`, `action`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl From<Run> for CreatedRun {
    /// A created run as run history shows it (a lost create answer found again).
    fn from(run: Run) -> Self {
        CreatedRun {
            run_id: run.run_id,
            run_type: Some("technique".to_owned()),
            estimated_seconds: None,
            charged_cost: run.charged_cost,
            poll_url: run.poll_url,
            project_id: None,
            extra: run.extra,
        }
    }
}

#[derive(Deserialize)]
struct RawCreatedRun {
    run_id: Option<String>,
    #[serde(rename = "runId")]
    run_id_camel: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    run_type: Option<String>,
    estimated_seconds: Option<f64>,
    #[serde(rename = "estimatedSeconds")]
    estimated_seconds_camel: Option<f64>,
    charged_cost: Option<f64>,
    #[serde(rename = "chargedCost")]
    charged_cost_camel: Option<f64>,
    poll_url: Option<String>,
    #[serde(rename = "pollUrl")]
    poll_url_camel: Option<String>,
    project_id: Option<String>,
    #[serde(rename = "projectId")]
    project_id_camel: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for CreatedRun {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = RawCreatedRun::deserialize(d)?;
        Ok(CreatedRun {
            run_id: first([r.run_id, r.run_id_camel, r.id])
                .ok_or_else(|| D::Error::missing_field("run_id"))?,
            run_type: r.run_type,
            estimated_seconds: first([r.estimated_seconds, r.estimated_seconds_camel]),
            charged_cost: first([r.charged_cost, r.charged_cost_camel]),
            poll_url: first([r.poll_url, r.poll_url_camel]),
            project_id: first([r.project_id, r.project_id_camel]),
            extra: r.extra,
        })
    }
}

open_enum!(
    /// Where an asset is in its life: `pending_upload → ready | failed`.
    AssetStatus, Unknown {
        /// Reserved; bytes not uploaded (or not processed) yet.
        PendingUpload = "pending_upload",
        /// Stored; its `url` can go into technique inputs.
        Ready = "ready",
        /// Processing failed; see `failure_message`.
        Failed = "failed",
    }
);

open_enum!(
    /// How an asset's bytes arrived.
    UploadedVia, Other {
        /// FLORA fetched a URL.
        Url = "url",
        /// A signed upload to the storage host.
        SignedUrl = "signed_url" | "signed-url",
        /// Bytes sent directly to `POST /assets`.
        Direct = "direct",
    }
);

/// Where to send the bytes of a signed upload: a multipart POST (or a raw PUT to
/// `upload_url` when there is no `upload` object). Never sent the FLORA key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadTarget {
    /// The storage host's URL.
    pub url: String,
    /// HTTP method (`POST` when missing).
    pub method: Option<String>,
    /// The form part holding the file (`file` when missing).
    pub file_field: Option<String>,
    /// Fields to send before the file, in this order.
    pub form_fields: Vec<(String, String)>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawUploadTarget {
    url: String,
    method: Option<String>,
    file_field: Option<String>,
    #[serde(rename = "fileField")]
    file_field_camel: Option<String>,
    form_fields: Option<Map<String, Value>>,
    #[serde(rename = "formFields")]
    form_fields_camel: Option<Map<String, Value>>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for UploadTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawUploadTarget::deserialize(d)?;
        let fields = first([r.form_fields, r.form_fields_camel]).unwrap_or_default();
        Ok(UploadTarget {
            url: r.url,
            method: r.method,
            file_field: first([r.file_field, r.file_field_camel]),
            // Signed POST policies want the fields as sent; non-strings are sent as JSON text.
            form_fields: fields
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            extra: r.extra,
        })
    }
}

/// An uploaded (or reserved) file in FLORA's storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    /// `asset_…` id.
    pub asset_id: String,
    /// Lifecycle status.
    pub status: AssetStatus,
    /// The asset's URL (for technique inputs once `ready`).
    pub url: Option<String>,
    /// How the bytes arrived.
    pub uploaded_via: Option<UploadedVia>,
    /// Owning workspace.
    pub workspace_id: Option<String>,
    /// Content type as stored.
    pub content_type: Option<String>,
    /// File name.
    pub name: Option<String>,
    /// Size in bytes, once known.
    pub size_bytes: Option<u64>,
    /// Why processing failed.
    pub failure_message: Option<String>,
    /// Image/video width.
    pub width: Option<u64>,
    /// Image/video height.
    pub height: Option<u64>,
    /// Where to upload the bytes (signed uploads).
    pub upload: Option<UploadTarget>,
    /// Raw PUT target (signed uploads without an `upload` object).
    pub upload_url: Option<String>,
    /// When the upload target expires, as sent.
    pub expires_at: Option<String>,
    /// Unknown fields (`created_at` in either form, `visibility`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawAsset {
    asset_id: Option<String>,
    #[serde(rename = "assetId")]
    asset_id_camel: Option<String>,
    id: Option<String>,
    status: Option<AssetStatus>,
    url: Option<String>,
    uploaded_via: Option<UploadedVia>,
    #[serde(rename = "uploadedVia")]
    uploaded_via_camel: Option<UploadedVia>,
    workspace_id: Option<String>,
    #[serde(rename = "workspaceId")]
    workspace_id_camel: Option<String>,
    content_type: Option<String>,
    #[serde(rename = "contentType")]
    content_type_camel: Option<String>,
    name: Option<String>,
    size_bytes: Option<u64>,
    #[serde(rename = "sizeBytes")]
    size_bytes_camel: Option<u64>,
    failure_message: Option<String>,
    #[serde(rename = "failureMessage")]
    failure_message_camel: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    upload: Option<UploadTarget>,
    upload_url: Option<String>,
    #[serde(rename = "uploadUrl")]
    upload_url_camel: Option<String>,
    expires_at: Option<String>,
    #[serde(rename = "expiresAt")]
    expires_at_camel: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for Asset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = RawAsset::deserialize(d)?;
        Ok(Asset {
            asset_id: first([r.asset_id, r.asset_id_camel, r.id])
                .ok_or_else(|| D::Error::missing_field("asset_id"))?,
            status: r.status.ok_or_else(|| D::Error::missing_field("status"))?,
            url: r.url,
            uploaded_via: first([r.uploaded_via, r.uploaded_via_camel]),
            workspace_id: first([r.workspace_id, r.workspace_id_camel]),
            content_type: first([r.content_type, r.content_type_camel]),
            name: r.name,
            size_bytes: first([r.size_bytes, r.size_bytes_camel]),
            failure_message: first([r.failure_message, r.failure_message_camel]),
            width: r.width,
            height: r.height,
            upload: r.upload,
            upload_url: first([r.upload_url, r.upload_url_camel]),
            expires_at: first([r.expires_at, r.expires_at_camel]),
            extra: r.extra,
        })
    }
}

/// A workspace the key can use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    /// `ws_…` id.
    pub workspace_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Creation time as sent.
    pub created_at: Option<f64>,
    /// The key holder's role.
    pub role: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Deserialize)]
struct RawWorkspace {
    workspace_id: Option<String>,
    #[serde(rename = "workspaceId")]
    workspace_id_camel: Option<String>,
    name: Option<String>,
    created_at: Option<f64>,
    #[serde(rename = "createdAt")]
    created_at_camel: Option<f64>,
    role: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl<'de> Deserialize<'de> for Workspace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = RawWorkspace::deserialize(d)?;
        Ok(Workspace {
            workspace_id: first([r.workspace_id, r.workspace_id_camel])
                .ok_or_else(|| D::Error::missing_field("workspace_id"))?,
            name: r.name,
            created_at: first([r.created_at, r.created_at_camel]),
            role: r.role,
            extra: r.extra,
        })
    }
}

/// Pagination metadata; every field may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Meta {
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct RawMeta {
    next_cursor: Option<String>,
    #[serde(rename = "nextCursor")]
    next_cursor_camel: Option<String>,
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawMeta::deserialize(d)?;
        Ok(Meta {
            next_cursor: first([r.next_cursor, r.next_cursor_camel]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_decodes_snake_case() {
        let run: Run = serde_json::from_value(json!({
            "run_id": "run_1", "status": "completed", "progress": 100, "created_at": 1,
            "started_at": 2, "completed_at": 3, "charged_cost": 0.05,
            "poll_url": "https://app.flora.ai/api/v1/techniques/cctv-cam/runs/run_1",
            "outputs": [{"output_id": "output_image", "type": "imageUrl", "url": "https://m/o.png"}]
        }))
        .unwrap();
        assert_eq!(run.run_id, "run_1");
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(run.completed_at, Some(3.0));
        assert_eq!(run.charged_cost, Some(0.05));
        assert_eq!(run.outputs[0].output_id, "output_image");
        assert_eq!(run.outputs[0].kind, MediaType::ImageUrl);
        assert!(run.poll_url.is_some());
    }

    #[test]
    fn run_decodes_camel_case() {
        let run: Run = serde_json::from_value(json!({
            "runId": "run_2", "status": "failed", "progress": 10, "createdAt": 1,
            "startedAt": 2, "completedAt": 3, "chargedCost": 0,
            "pollUrl": "https://x/y", "errorCode": "safety_blocked", "errorMessage": "no",
            "outputs": [{"outputId": "o", "type": "text", "url": "hello world"}]
        }))
        .unwrap();
        assert_eq!(run.run_id, "run_2");
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.started_at, Some(2.0));
        assert_eq!(run.error_code, Some(RunErrorCode::SafetyBlocked));
        assert_eq!(run.error_message.as_deref(), Some("no"));
        assert_eq!(run.poll_url.as_deref(), Some("https://x/y"));
        assert_eq!(run.outputs[0].output_id, "o");
        assert_eq!(run.outputs[0].url, "hello world");
    }

    #[test]
    fn run_id_falls_back_to_id_and_both_spellings_do_not_clash() {
        let run: Run = serde_json::from_value(json!({"id": "run_3", "status": "pending"})).unwrap();
        assert_eq!(run.run_id, "run_3");
        let run: Run = serde_json::from_value(
            json!({"run_id": "run_a", "runId": "run_a", "id": "x", "status": "pending"}),
        )
        .unwrap();
        assert_eq!(run.run_id, "run_a");
    }

    #[test]
    fn unknown_enum_values_and_fields_survive() {
        let run: Run = serde_json::from_value(json!({
            "run_id": "run_4", "status": "paused", "error_code": "quota_melted",
            "brand_new": {"a": 1},
            "outputs": [{"output_id": "o", "type": "hologramUrl", "url": "x", "depth": 3}]
        }))
        .unwrap();
        assert_eq!(run.status, RunStatus::Unknown("paused".into()));
        assert_eq!(
            run.error_code,
            Some(RunErrorCode::Other("quota_melted".into()))
        );
        assert_eq!(run.extra["brand_new"], json!({"a": 1}));
        assert_eq!(
            run.outputs[0].kind,
            MediaType::Unknown("hologramUrl".into())
        );
        assert_eq!(run.outputs[0].extra["depth"], json!(3));
        let back = serde_json::to_value(&run).unwrap();
        assert_eq!(back["status"], "paused");
        assert_eq!(back["error_code"], "quota_melted");
        assert_eq!(back["outputs"][0]["type"], "hologramUrl");
        assert_eq!(back["brand_new"], json!({"a": 1}));
    }

    #[test]
    fn technique_decodes_both_casings_and_keeps_raw() {
        let snake = json!({
            "technique_id": "tech_cctv-cam", "name": "CCTV Cam", "run_cost": 0.05,
            "inputs": [{"id": "input_image", "name": "Input Image", "type": "imageUrl",
                        "specified_aspect_ratio": "1:1", "specified_duration": 5, "optional": true}],
            "outputs": [], "future": true
        });
        let t: TechniqueSchema = serde_json::from_value(snake.clone()).unwrap();
        assert_eq!(t.technique_id, "tech_cctv-cam");
        assert_eq!(t.run_cost, Some(0.05));
        let slot = &t.inputs.as_ref().unwrap()[0];
        assert_eq!(slot.specified_aspect_ratio.as_deref(), Some("1:1"));
        assert_eq!(slot.specified_duration, Some(5.0));
        assert!(slot.optional);
        assert_eq!(t.extra["future"], json!(true));
        assert_eq!(t.raw(), &snake);
        assert_eq!(t.slug_or_derived(), "cctv-cam");

        let camel: TechniqueSchema = serde_json::from_value(json!({
            "techniqueId": "tech_x", "name": "X", "runCost": 5, "slug": "x-slug",
            "inputs": [{"id": "v", "name": "V", "type": "video_url",
                        "specifiedAspectRatio": "16:9", "specifiedDuration": 4}],
            "outputs": [{"id": "o", "name": "O", "type": "clay"}]
        }))
        .unwrap();
        assert_eq!(camel.technique_id, "tech_x");
        assert_eq!(camel.run_cost, Some(5.0));
        assert_eq!(camel.slug_or_derived(), "x-slug");
        let slot = &camel.inputs.as_ref().unwrap()[0];
        assert_eq!(slot.kind, MediaType::VideoUrl);
        assert_eq!(slot.specified_aspect_ratio.as_deref(), Some("16:9"));
        assert_eq!(
            camel.outputs.as_ref().unwrap()[0].kind,
            MediaType::Unknown("clay".into())
        );
    }

    #[test]
    fn created_run_decodes_both_casings() {
        let a: CreatedRun = serde_json::from_value(json!({
            "run_id": "run_1", "type": "technique", "estimated_seconds": 30,
            "charged_cost": 0, "poll_url": null, "technique": {"technique_id": "tech_x"}
        }))
        .unwrap();
        assert_eq!(a.run_id, "run_1");
        assert_eq!(a.extra["technique"]["technique_id"], "tech_x");
        let b: CreatedRun =
            serde_json::from_value(json!({"runId": "run_2", "pollUrl": "https://p"})).unwrap();
        assert_eq!(b.run_id, "run_2");
        assert_eq!(b.poll_url.as_deref(), Some("https://p"));
    }

    #[test]
    fn media_type_aliases_normalise() {
        for (wire, want) in [
            ("imageUrl", MediaType::ImageUrl),
            ("image_url", MediaType::ImageUrl),
            ("video_url", MediaType::VideoUrl),
            ("audio_url", MediaType::AudioUrl),
            ("document_url", MediaType::DocumentUrl),
            ("text", MediaType::Text),
        ] {
            assert_eq!(MediaType::from(wire), want);
        }
    }

    #[test]
    fn asset_decodes_both_casings_and_open_enums() {
        let a: Asset = serde_json::from_value(json!({
            "asset_id": "asset_1", "assetId": "asset_1", "status": "pending_upload",
            "uploaded_via": "signed_url", "url": "https://ik.imagekit.io/flora/a.png",
            "upload": {"url": "https://upload.example/u", "formFields": {"key": "k", "n": 3},
                       "fileField": "blob"},
            "expiresAt": "2026-01-01T00:00:00Z", "created_at": 5, "visibility": "workspace"
        }))
        .unwrap();
        assert_eq!(a.status, AssetStatus::PendingUpload);
        assert_eq!(a.uploaded_via, Some(UploadedVia::SignedUrl));
        let up = a.upload.unwrap();
        assert_eq!(up.file_field.as_deref(), Some("blob"));
        assert_eq!(
            up.form_fields,
            [
                ("key".to_owned(), "k".to_owned()),
                ("n".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(a.expires_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(a.extra["visibility"], "workspace");
        let b: Asset = serde_json::from_value(
            json!({"assetId": "asset_2", "status": "quarantined", "uploadedVia": "carrier-pigeon"}),
        )
        .unwrap();
        assert_eq!(b.status, AssetStatus::Unknown("quarantined".into()));
        assert_eq!(
            b.uploaded_via,
            Some(UploadedVia::Other("carrier-pigeon".into()))
        );
    }

    /// Every struct that accepts two spellings decodes an object carrying both at once
    /// (nulls included), as servers mid-migration send.
    #[test]
    fn both_spellings_at_once_decode_everywhere() {
        let meta: Meta =
            serde_json::from_value(json!({"next_cursor": null, "nextCursor": null})).unwrap();
        assert_eq!(meta.next_cursor, None);
        let meta: Meta =
            serde_json::from_value(json!({"next_cursor": "c1", "nextCursor": "c1"})).unwrap();
        assert_eq!(meta.next_cursor.as_deref(), Some("c1"));
        let meta: Meta =
            serde_json::from_value(json!({"next_cursor": null, "nextCursor": "c2"})).unwrap();
        assert_eq!(meta.next_cursor.as_deref(), Some("c2"));

        let ws: Workspace = serde_json::from_value(json!({
            "workspace_id": "ws_1", "workspaceId": "ws_1", "name": "W",
            "created_at": 1, "createdAt": 1, "role": "owner"
        }))
        .unwrap();
        assert_eq!(ws.workspace_id, "ws_1");
        assert_eq!(ws.created_at, Some(1.0));
        let ws: Workspace = serde_json::from_value(
            json!({"workspace_id": null, "workspaceId": "ws_2", "created_at": null}),
        )
        .unwrap();
        assert_eq!(ws.workspace_id, "ws_2");

        let run: Run = serde_json::from_value(json!({
            "run_id": "run_1", "runId": "run_1", "status": "completed",
            "created_at": 1, "createdAt": 1, "started_at": 2, "startedAt": 2,
            "completed_at": 3, "completedAt": 3, "error_code": null, "errorCode": null,
            "error_message": null, "errorMessage": null, "charged_cost": 0.1,
            "chargedCost": 0.1, "poll_url": null, "pollUrl": null,
            "outputs": [{"output_id": "o", "outputId": "o", "type": "text", "url": "x"}]
        }))
        .unwrap();
        assert_eq!(run.completed_at, Some(3.0));
        assert_eq!(run.outputs[0].output_id, "o");

        let created: CreatedRun = serde_json::from_value(json!({
            "run_id": "run_1", "runId": "run_1", "estimated_seconds": 3,
            "estimatedSeconds": 3, "charged_cost": 0, "chargedCost": 0, "poll_url": "p",
            "pollUrl": "p", "project_id": null, "projectId": null
        }))
        .unwrap();
        assert_eq!(created.estimated_seconds, Some(3.0));

        let t: TechniqueSchema = serde_json::from_value(json!({
            "technique_id": "tech_x", "techniqueId": "tech_x", "name": "X",
            "run_cost": 1, "runCost": 1,
            "inputs": [{"id": "i", "type": "text", "specified_aspect_ratio": "1:1",
                        "specifiedAspectRatio": "1:1", "specified_duration": 2,
                        "specifiedDuration": 2, "accepts_element": false,
                        "acceptsElement": false}],
            "outputs": []
        }))
        .unwrap();
        assert_eq!(t.technique_id, "tech_x");
        assert_eq!(
            t.inputs.unwrap()[0].specified_aspect_ratio.as_deref(),
            Some("1:1")
        );
    }
}
