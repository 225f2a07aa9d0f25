//! Cursor pagination, written once for every list endpoint.

use std::collections::VecDeque;

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::Client;
use crate::error::{Error, snippet};
use crate::transport::Call;
use crate::wire::Meta;

/// One page of a list endpoint.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A list request: path, query and the JSON key holding the items.
#[derive(Debug, Clone)]
pub(crate) struct ListRequest {
    pub segments: Vec<&'static str>,
    pub query: Vec<(&'static str, String)>,
    pub items_key: &'static str,
}

impl Client {
    /// Fetches one page.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        req: &ListRequest,
        cursor: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let mut url = self.url(&req.segments)?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                q.append_pair(k, v);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
        }
        let endpoint = format!("GET {}", url.path());
        let mut body: Value = self.send_json(Call::get(url)).await?;
        let decode_err = |what: String, source: serde_json::Error, body: &Value| Error::Decode {
            endpoint: endpoint.clone(),
            snippet: snippet(&format!("{what}: {body}")),
            source,
        };
        let meta = match body.get_mut("meta").map(Value::take) {
            None | Some(Value::Null) => Meta::default(),
            Some(m) => {
                serde_json::from_value(m.clone()).map_err(|e| decode_err("meta".into(), e, &m))?
            }
        };
        let items = match body.get_mut(req.items_key).map(Value::take) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => {
                let mut out = Vec::with_capacity(list.len());
                for (i, item) in list.into_iter().enumerate() {
                    let decoded = T::deserialize(&item)
                        .map_err(|e| decode_err(format!("{}[{i}]", req.items_key), e, &item))?;
                    out.push(decoded);
                }
                out
            }
            Some(other) => {
                let e = <serde_json::Error as serde::de::Error>::custom(format!(
                    "`{}` is not an array",
                    req.items_key
                ));
                return Err(decode_err(req.items_key.into(), e, &other));
            }
        };
        Ok(Page {
            items,
            next_cursor: meta.next_cursor.filter(|c| !c.is_empty()),
        })
    }

    /// Every item of every page, following `meta.next_cursor` until it is missing or empty.
    pub(crate) fn paginate<T: DeserializeOwned + Send + 'static>(
        &self,
        req: ListRequest,
        first_cursor: Option<String>,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        struct State<T> {
            client: Client,
            req: ListRequest,
            cursor: Option<String>,
            buffer: VecDeque<T>,
            started: bool,
            done: bool,
        }
        let state = State {
            client: self.clone(),
            req,
            cursor: first_cursor,
            buffer: VecDeque::new(),
            started: false,
            done: false,
        };
        futures_util::stream::try_unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.buffer.pop_front() {
                    return Ok(Some((item, s)));
                }
                if s.done || (s.started && s.cursor.is_none()) {
                    return Ok(None);
                }
                s.started = true;
                let page: Page<T> = s.client.page(&s.req, s.cursor.as_deref()).await?;
                if page.next_cursor.is_some() && page.next_cursor == s.cursor {
                    return Err(Error::Decode {
                        endpoint: format!("GET /{}", s.req.segments.join("/")),
                        snippet: String::new(),
                        source: <serde_json::Error as serde::de::Error>::custom(
                            "the server returned the same cursor twice; stopping to avoid a loop",
                        ),
                    });
                }
                s.done = page.items.is_empty();
                s.cursor = page.next_cursor;
                s.buffer.extend(page.items);
            }
        })
    }
}
