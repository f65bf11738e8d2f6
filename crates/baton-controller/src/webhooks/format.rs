//! Pure: a message as an HTTP request (headers and body) in each format. CloudEvents follow the
//! HTTP protocol binding of CloudEvents 1.0: binary mode puts the attributes in `ce-` headers and
//! the data in the body; structured mode sends the whole event as
//! `application/cloudevents+json`.
use serde_json::json;

use super::Message;
use crate::api::notifications::{headers as h, NotificationFormat};

/// A request to send: headers besides the sink's own, and the body.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub headers: Vec<(&'static str, String)>,
    pub bytes: Vec<u8>,
}

/// The CloudEvents `source` of the object: its API path.
pub fn source(m: &Message) -> String {
    format!(
        "/apis/{}/namespaces/{}/{}/{}",
        crate::api::API_VERSION,
        m.namespace,
        m.kind.plural,
        m.name
    )
}

fn cloudevent_type(m: &Message) -> String {
    format!("{}{}", m.kind.type_prefix, m.event)
}

/// One line for people (Slack's `text`).
pub fn text(m: &Message) -> String {
    format!("[{}/{}] {}: {}", m.namespace, m.name, m.event, m.message)
}

/// `m` in format `f`.
pub fn render(m: &Message, f: NotificationFormat) -> Body {
    let key = (h::IDEMPOTENCY_KEY, m.id.clone());
    match f {
        NotificationFormat::Json => Body {
            headers: vec![("content-type", h::JSON.into()), key],
            bytes: m.data.to_string().into_bytes(),
        },
        NotificationFormat::Slack => Body {
            headers: vec![("content-type", h::JSON.into()), key],
            bytes: json!({ "text": text(m) }).to_string().into_bytes(),
        },
        NotificationFormat::CloudEventsBinary => Body {
            headers: vec![
                ("content-type", h::JSON.into()),
                key,
                (h::CE_SPECVERSION, h::SPECVERSION.into()),
                (h::CE_TYPE, cloudevent_type(m)),
                (h::CE_SOURCE, source(m)),
                (h::CE_ID, m.id.clone()),
                (h::CE_TIME, m.time.to_string()),
                (h::CE_SUBJECT, m.name.clone()),
            ],
            bytes: m.data.to_string().into_bytes(),
        },
        NotificationFormat::CloudEventsStructured => Body {
            headers: vec![("content-type", h::CLOUDEVENTS_JSON.into()), key],
            bytes: json!({
                "specversion": h::SPECVERSION,
                "type": cloudevent_type(m),
                "source": source(m),
                "id": m.id,
                "time": m.time.to_string(),
                "subject": m.name,
                "datacontenttype": h::JSON,
                "data": m.data,
            })
            .to_string()
            .into_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::SourceKind;

    #[test]
    fn each_format_has_its_shape() {
        let m = Message {
            id: "u1-3-00ff".into(),
            event: "Completed",
            kind: SourceKind {
                type_prefix: "dev.baton.rollout.",
                plural: "rollouts",
            },
            name: "web".into(),
            namespace: "apps".into(),
            message: "v2 healthy".into(),
            time: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            data: json!({"id": "u1-3-00ff", "event": "Completed", "message": "v2 healthy"}),
        };
        let header = |b: &Body, k: &str| {
            b.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let body = |b: &Body| serde_json::from_slice::<serde_json::Value>(&b.bytes).unwrap();

        let b = render(&m, NotificationFormat::Json);
        assert_eq!(header(&b, "Idempotency-Key").as_deref(), Some("u1-3-00ff"));
        assert_eq!(body(&b), m.data, "the json body is the data");

        let v = body(&render(&m, NotificationFormat::Slack));
        assert_eq!(v, json!({"text": "[apps/web] Completed: v2 healthy"}));

        let b = render(&m, NotificationFormat::CloudEventsBinary);
        assert_eq!(header(&b, "ce-specversion").as_deref(), Some("1.0"));
        assert_eq!(header(&b, "ce-type").as_deref(), Some("dev.baton.rollout.Completed"));
        assert_eq!(
            header(&b, "ce-source").as_deref(),
            Some("/apis/baton.dev/v1alpha1/namespaces/apps/rollouts/web")
        );
        assert_eq!(header(&b, "ce-id").as_deref(), Some("u1-3-00ff"));
        assert_eq!(header(&b, "ce-time").as_deref(), Some("2027-01-15T08:00:00Z"));
        assert_eq!(header(&b, "content-type").as_deref(), Some("application/json"));
        assert_eq!(body(&b)["message"], "v2 healthy");

        let b = render(&m, NotificationFormat::CloudEventsStructured);
        assert_eq!(
            header(&b, "content-type").as_deref(),
            Some("application/cloudevents+json")
        );
        let v = body(&b);
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "dev.baton.rollout.Completed");
        assert_eq!(v["id"], "u1-3-00ff");
        assert_eq!(v["subject"], "web");
        assert_eq!(v["data"]["event"], "Completed");
    }
}
