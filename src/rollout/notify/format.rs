//! Pure: a message as an HTTP request (headers and body) in each format. CloudEvents follow the
//! HTTP protocol binding of CloudEvents 1.0: binary mode puts the attributes in `ce-` headers and
//! the data in the body; structured mode sends the whole event as
//! `application/cloudevents+json`.
use serde_json::{json, Value};

use super::decide::Payload;
use crate::api::notifications::{headers as h, NotificationFormat, ROLLOUT_EVENT_TYPE_PREFIX};

/// A request to send: headers besides the sink's own, and the body.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub headers: Vec<(&'static str, String)>,
    pub bytes: Vec<u8>,
}

/// The CloudEvents `source` of a Rollout: its API path.
pub fn source(p: &Payload) -> String {
    format!(
        "/apis/{}/namespaces/{}/rollouts/{}",
        crate::api::API_VERSION,
        p.namespace,
        p.rollout
    )
}

fn cloudevent_type(p: &Payload) -> String {
    format!("{ROLLOUT_EVENT_TYPE_PREFIX}{}", p.event)
}

/// One line for people (Slack's `text`).
pub fn text(p: &Payload) -> String {
    format!("[{}/{}] {}: {}", p.namespace, p.rollout, p.event, p.message)
}

/// `p` in format `f`.
pub fn render(p: &Payload, f: NotificationFormat) -> Body {
    let data = serde_json::to_value(p).unwrap_or(Value::Null);
    let key = (h::IDEMPOTENCY_KEY, p.id.clone());
    match f {
        NotificationFormat::Json => Body {
            headers: vec![("content-type", h::JSON.into()), key],
            bytes: data.to_string().into_bytes(),
        },
        NotificationFormat::Slack => Body {
            headers: vec![("content-type", h::JSON.into()), key],
            bytes: json!({ "text": text(p) }).to_string().into_bytes(),
        },
        NotificationFormat::CloudEventsBinary => Body {
            headers: vec![
                ("content-type", h::JSON.into()),
                key,
                (h::CE_SPECVERSION, h::SPECVERSION.into()),
                (h::CE_TYPE, cloudevent_type(p)),
                (h::CE_SOURCE, source(p)),
                (h::CE_ID, p.id.clone()),
                (h::CE_TIME, p.time.to_string()),
                (h::CE_SUBJECT, p.rollout.clone()),
            ],
            bytes: data.to_string().into_bytes(),
        },
        NotificationFormat::CloudEventsStructured => Body {
            headers: vec![("content-type", h::CLOUDEVENTS_JSON.into()), key],
            bytes: json!({
                "specversion": h::SPECVERSION,
                "type": cloudevent_type(p),
                "source": source(p),
                "id": p.id,
                "time": p.time.to_string(),
                "subject": p.rollout,
                "datacontenttype": h::JSON,
                "data": data,
            })
            .to_string()
            .into_bytes(),
        },
    }
}
