//! JSON log lines, formatted in one pass.
//!
//! tracing-subscriber's own JSON formatter keeps a span's fields as a JSON object text:
//! each `record` on the span (the access layer adds `tenant_id` and `actor` to every
//! request's span) parses that text and serialises it again, and each line logged
//! inside the span parses it once more. Here a span's fields are kept as `"name":value`
//! pairs that a `record` appends to, and a line copies them as they are. The lines have
//! the same shape as before:
//!
//! ```json
//! {"timestamp":"…","level":"INFO","message":"request completed","status":200,
//!  "target":"tenantry::http::middleware","span":{"name":"request","method":"GET",…}}
//! ```

use std::fmt::{self, Write};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span::Record,
};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

/// The field formatter: a span's fields as comma-separated `"name":value` pairs.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonPairs;

impl<'w> FormatFields<'w> for JsonPairs {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut pairs = Pairs::new(&mut writer, true);
        fields.record(&mut pairs);
        pairs.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut pairs = Pairs::new(&mut writer, first);
        fields.record(&mut pairs);
        pairs.result
    }
}

/// The line formatter: timestamp, level, the event's fields, target and the current
/// span with its fields.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonPairs> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonPairs>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut pairs = Pairs::new(&mut writer, false);
        event.record(&mut pairs);
        pairs.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":{\"name\":")?;
            string(&mut writer, span.name())?;
            let extensions = span.extensions();
            if let Some(fields) = extensions
                .get::<FormattedFields<JsonPairs>>()
                .filter(|f| !f.is_empty())
            {
                writer.write_char(',')?;
                writer.write_str(fields)?;
            }
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes fields as `"name":value` pairs, a comma before each unless it is the first.
struct Pairs<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: Write> Pairs<'a, W> {
    fn new(out: &'a mut W, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    fn pair(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            let first = std::mem::take(&mut self.first);
            self.result = write_pair(self.out, first, field.name(), value);
        }
    }
}

fn write_pair<W: Write>(
    out: &mut W,
    first: bool,
    name: &str,
    value: impl FnOnce(&mut W) -> fmt::Result,
) -> fmt::Result {
    if !first {
        out.write_char(',')?;
    }
    string(out, name)?;
    out.write_char(':')?;
    value(out)
}

impl<W: Write> Visit for Pairs<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, |out| string(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pair(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pair(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pair(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities.
        if value.is_finite() {
            self.pair(field, |out| write!(out, "{value}"));
        } else {
            self.pair(field, |out| write!(out, "\"{value}\""));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.pair(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value}")?;
            out.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in text.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    fn logged(emit: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonPairs)
                .event_format(JsonLines)
                .with_writer(lines.clone()),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn lines_are_json_with_the_span_and_its_recorded_fields() {
        let lines = logged(|| {
            let span = tracing::info_span!(
                "request",
                method = %"GET",
                route = "/a/{id}",
                tenant_id = tracing::field::Empty,
                actor = tracing::field::Empty,
            );
            let _entered = span.enter();
            span.record("tenant_id", "t-1");
            span.record("actor", tracing::field::display("user:\"x\""));
            tracing::info!(
                status = 200u16,
                latency_ms = 0.5,
                ok = true,
                "request completed"
            );
            tracing::warn!(error = "line\nbreak\u{1}", "odd text");
        });
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "request completed");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 0.5);
        assert_eq!(first["ok"], true);
        assert!(
            first["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert_eq!(first["span"]["name"], "request");
        assert_eq!(first["span"]["method"], "GET");
        assert_eq!(first["span"]["route"], "/a/{id}");
        assert_eq!(first["span"]["tenant_id"], "t-1");
        assert_eq!(first["span"]["actor"], "user:\"x\"");
        assert_eq!(lines[1]["error"], "line\nbreak\u{1}");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn a_line_outside_any_span_has_no_span() {
        let lines = logged(|| tracing::info!(n = 1u64, "alone"));
        assert_eq!(lines[0]["n"], 1);
        assert!(lines[0].get("span").is_none());
        assert_eq!(lines[0]["target"], module_path!());
    }
}
