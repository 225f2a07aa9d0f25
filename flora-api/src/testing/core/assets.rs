//! The fake's assets: the three upload paths, signed targets and their renewal, and the
//! media host that serves the bytes.

use super::*;

impl Core {
    pub(super) fn new_asset(&self, st: &mut State, json: Value) -> Value {
        st.next_id += 1;
        let id = format!("asset_fake{:04}", st.next_id);
        let mut json = json;
        json["asset_id"] = json!(id);
        json["workspace_id"] = json!(crate::testing::FAKE_WORKSPACE_ID);
        json["visibility"] = json!("workspace");
        st.assets
            .insert(id.clone(), AssetState { json: json.clone() });
        json
    }

    /// `POST /assets`. A key seen before replays its first answer as it was (a signed
    /// reserve's with its upload target), as FLORA replays.
    pub(super) fn create_asset(&self, req: &FakeRequest, key: Option<String>) -> FakeResponse {
        if let Some(first) = key
            .as_ref()
            .and_then(|k| self.with(|st| st.asset_answers.get(k).cloned()))
        {
            return json_answer(201, &first);
        }
        let answer = self.new_asset_from(req);
        if let (
            Some(k),
            FakeResponse::Answer {
                status: 201, body, ..
            },
        ) = (key, &answer)
            && let Ok(first) = serde_json::from_slice::<Value>(body)
        {
            self.with(|st| st.asset_answers.insert(k, first));
        }
        answer
    }

    pub(super) fn new_asset_from(&self, req: &FakeRequest) -> FakeResponse {
        let media_base = self.media_base();
        let ct = req.content_type();
        self.with(|st| {
            if ct.starts_with("multipart/form-data") {
                let Some(form) = multipart::parse(&ct, &req.body) else {
                    return error(400, "input_validation_error", "malformed multipart body", &[]);
                };
                let Some(file) = form.file("file") else {
                    return error(400, "input_validation_error", "no `file` part", &[]);
                };
                let name = file.file_name.clone().unwrap_or_else(|| "upload".to_owned());
                let content_type = file.content_type.clone().unwrap_or_default();
                if let Some(refused) = refuse_type(&content_type) {
                    return refused;
                }
                let a = self.new_asset(st, json!({"status": "ready", "uploaded_via": "direct", "name": name, "content_type": content_type, "size_bytes": file.data.len()}));
                let id = a["asset_id"].as_str().unwrap_or("").to_owned();
                let (url, path) = asset_url(&media_base, &id, &name);
                st.media.insert(path, (file.data.clone(), content_type));
                if let Some(s) = st.assets.get_mut(&id) {
                    s.json["url"] = json!(url);
                }
                let mut a = a;
                a["url"] = json!(url);
                return json_answer(201, &a);
            }
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return error(400, "invalid_json", "the body is not JSON", &[]);
            };
            match body["source"].as_str() {
                Some("signed-url") => {
                    if let Some(refused) = body["content_type"].as_str().and_then(refuse_type) {
                        return refused;
                    }
                    let name = body["file_name"].as_str().unwrap_or("upload").to_owned();
                    let mut a = self.new_asset(st, json!({"status": "pending_upload", "uploaded_via": "signed_url", "name": name, "content_type": body["content_type"]}));
                    let id = a["asset_id"].as_str().unwrap_or("").to_owned();
                    a["url"] = json!(asset_url(&media_base, &id, &name).0);
                    a["upload"] = json!({"url": format!("{media_base}/media/upload/{id}"), "method": "POST", "file_field": "file", "form_fields": {"key": id}});
                    if let Some(s) = st.assets.get_mut(&id) {
                        s.json["url"] = a["url"].clone();
                    }
                    json_answer(201, &a)
                }
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    let a = self.new_asset(st, json!({"status": "ready", "uploaded_via": "url", "url": url}));
                    json_answer(201, &a)
                }
                _ => error(
                    400,
                    "input_validation_error",
                    "pass `source` as \"signed-url\" or an https URL",
                    &[("source".to_owned(), "invalid".to_owned())],
                ),
            }
        })
    }

    pub(super) fn receive_upload(&self, id: &str, req: &FakeRequest) -> FakeResponse {
        let ct = req.content_type();
        let (data, file_ct) = if ct.starts_with("multipart/form-data") {
            match multipart::parse(&ct, &req.body).and_then(|f| f.file("file").cloned()) {
                Some(f) => (f.data, f.content_type.unwrap_or_default()),
                None => {
                    return FakeResponse::Answer {
                        status: 400,
                        headers: vec![],
                        body: Bytes::from_static(b"no file part"),
                    };
                }
            }
        } else {
            (req.body.clone(), ct)
        };
        self.with(|st| {
            let Some(a) = st.assets.get(id) else {
                return FakeResponse::Answer {
                    status: 404,
                    headers: vec![],
                    body: Bytes::new(),
                };
            };
            let path = a.json["url"]
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            st.media.insert(path, (data, file_ct));
            FakeResponse::Answer {
                status: 204,
                headers: vec![],
                body: Bytes::new(),
            }
        })
    }

    pub(super) fn complete_asset(&self, id: &str) -> FakeResponse {
        self.with(|st| match st.assets.get_mut(id) {
            None => error(404, "not_found", "asset not found", &[]),
            Some(a) if a.json["status"] == "ready" => {
                error(409, "conflict", "the asset is already complete", &[])
            }
            Some(a) => {
                a.json["status"] = json!("ready");
                json_answer(200, &a.json)
            }
        })
    }

    /// `POST /assets/{id}/retry`: like FLORA, a fresh signed upload reservation for an asset
    /// still waiting for its bytes.
    pub(super) fn renew_target(&self, id: &str) -> FakeResponse {
        let media_base = self.media_base();
        self.with(|st| {
            st.renewals += 1;
            let renewal = st.renewals;
            match st.assets.get(id) {
                None => error(404, "not_found", "asset not found", &[]),
                Some(a) if a.json["status"] != "pending_upload" => error(
                    409,
                    "conflict",
                    "the asset is not waiting for an upload",
                    &[],
                ),
                Some(a) => {
                    let mut answer = a.json.clone();
                    answer["upload"] = json!({
                        "url": format!("{media_base}/media/upload/{id}"),
                        "method": "POST",
                        "file_field": "file",
                        "form_fields": {"key": id, "renewal": renewal.to_string()},
                    });
                    json_answer(200, &answer)
                }
            }
        })
    }

    pub(super) fn asset(&self, id: &str) -> FakeResponse {
        self.with(|st| match st.assets.get(id) {
            None => error(404, "not_found", "asset not found", &[]),
            Some(a) => json_answer(200, &a.json),
        })
    }

    pub(super) fn serve_media(&self, path: &str) -> FakeResponse {
        self.with(|st| match st.media.get(path) {
            Some((bytes, ct)) => FakeResponse::Answer {
                status: 200,
                headers: vec![("content-type", ct.clone())],
                body: bytes.clone(),
            },
            None => FakeResponse::Answer {
                status: 404,
                headers: vec![],
                body: Bytes::from_static(b"not found"),
            },
        })
    }
}

/// The URL of an asset's bytes on the media host, and its path (the key the bytes are kept
/// under): the file name percent-encoded as one segment, so `IMG 0001.png` or `a#b.png` give
/// valid URLs that resolve to the bytes.
fn asset_url(media_base: &str, id: &str, name: &str) -> (String, String) {
    match url::Url::parse(media_base) {
        Ok(mut u) => {
            if let Ok(mut segments) = u.path_segments_mut() {
                segments
                    .pop_if_empty()
                    .extend(["media", "assets", id, name]);
            }
            let path = u.path().to_owned();
            (u.into(), path)
        }
        // The media base is the fake's own (a constant or `serve()`'s address): valid.
        Err(_) => {
            let path = format!("/media/assets/{id}/upload");
            (format!("{media_base}{path}"), path)
        }
    }
}

/// FLORA stores only the types it lists (jpeg, png, webp, gif, avif, heic, heif, mp4, webm,
/// quicktime, mpeg, wav, ogg, pdf); the fake refuses the others as a 400 on `content_type`.
fn refuse_type(content_type: &str) -> Option<FakeResponse> {
    let ct = crate::content::normalise(content_type);
    if crate::content::allowed().any(|(t, _)| t == ct) {
        return None;
    }
    let allowed: Vec<&str> = crate::content::allowed().map(|(t, _)| t).collect();
    Some(error(
        400,
        "input_validation_error",
        &format!(
            "unsupported content type `{ct}`; allowed: {}",
            allowed.join(", ")
        ),
        &[(
            "content_type".to_owned(),
            "unsupported content type".to_owned(),
        )],
    ))
}
