//! The document's bytes, exactly as `serde_json::to_vec_pretty` writes a [`Document`] (and a
//! newline). Each listener's unchanging part is rendered once, when it starts: a new version
//! copies those bytes and adds the deadlines, so its cost is the document's length in copied
//! bytes, not a serialization of every listener it lists.

use bytes::Bytes;
use serde::Serialize;

#[cfg(test)]
use super::Document;
use super::ListenerEntry;

/// [`ListenerEntry`] as the document writes it, borrowed; its fields and names are
/// `ListenerEntry`'s (a test holds the renderings equal).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryOut<'a> {
    listener_set: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a str>,
    fencing_token: i32,
}

/// A listener the application runs, with its entry rendered up to where its `validUntil` goes:
/// indented as in the document, the closing brace left off.
pub(super) struct Held {
    head: String,
}

impl Held {
    pub(super) fn new(e: &ListenerEntry) -> Held {
        let out = EntryOut {
            listener_set: &e.listener_set,
            id: &e.id,
            config: e.config.as_deref(),
            fencing_token: e.fencing_token,
        };
        let alone = serde_json::to_string_pretty(&out).unwrap_or_default();
        // `{\n  "id": "a"\n}` alone; in the document its fields are three levels deep. A JSON
        // string holds no raw newline, so every newline is the pretty printer's.
        let open = alone.strip_suffix("\n}").unwrap_or(&alone);
        Held {
            head: open.replace('\n', "\n    "),
        }
    }
}

/// A JSON string.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The tail an entry with deadline `text` ends with (`None`: no deadline).
pub(super) fn tail(text: Option<&str>) -> String {
    match text {
        Some(t) => format!(",\n      \"validUntil\": {}\n    }}", quoted(t)),
        None => "\n    }".to_string(),
    }
}

/// The document of `version`: each listener as its [`Held`] and one of the `tails`.
pub(super) fn document<'a>(
    version: u64,
    pod: &str,
    namespace: &str,
    listeners: impl Iterator<Item = (&'a Held, &'a str)> + Clone,
    valid_until: Option<&str>,
) -> Bytes {
    // Sized once: the document is the listeners' bytes and little else (no copy as it grows).
    let size = 128
        + pod.len()
        + namespace.len()
        + listeners
            .clone()
            .map(|(h, t)| h.head.len() + t.len() + 6)
            .sum::<usize>();
    let mut out = String::with_capacity(size);
    out.push_str(&format!(
        "{{\n  \"version\": {version},\n  \"pod\": {},\n  \"namespace\": {},\n  \"listeners\": [",
        quoted(pod),
        quoted(namespace)
    ));
    let mut any = false;
    for (held, tail) in listeners {
        out.push_str(if any { ",\n    " } else { "\n    " });
        out.push_str(&held.head);
        out.push_str(tail);
        any = true;
    }
    out.push_str(if any { "\n  ]" } else { "]" });
    if let Some(v) = valid_until {
        out.push_str(",\n  \"validUntil\": ");
        out.push_str(&quoted(v));
    }
    out.push_str("\n}\n");
    Bytes::from(out)
}

/// [`document`] of `doc`, each entry with its own `validUntil`.
#[cfg(test)]
pub(super) fn of(doc: &Document) -> Bytes {
    let held: Vec<(Held, String)> = doc
        .listeners
        .iter()
        .map(|e| (Held::new(e), tail(e.valid_until.as_deref())))
        .collect();
    document(
        doc.version,
        &doc.pod,
        &doc.namespace,
        held.iter().map(|(h, t)| (h, t.as_str())),
        doc.valid_until.as_deref(),
    )
}
