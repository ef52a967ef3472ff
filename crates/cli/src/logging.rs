//! Log lines on stderr from `tracing` events, in the two formats driftwatch has always written:
//! `level: message k=v…` (values as JSON), or one JSON object per line with `ts`, `level`,
//! `msg` and the fields. Fields of the spans around an event are added to it, so a line inside
//! an application's span names the application. Which lines show is `--log-level` or
//! `RUST_LOG` (an `EnvFilter`); closing a span logs its duration at debug level.

use std::time::Instant;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The format of log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `info: synced app="shop" …`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Collects an event's or span's fields as JSON values. A value recorded with `%` whose text is
/// a JSON array or object (a list of objects, say) stays structured.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let structured = (text.starts_with('[') || text.starts_with('{'))
            .then(|| serde_json::from_str::<Value>(&text).ok())
            .flatten();
        self.put(field, structured.unwrap_or(Value::String(text)));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_owned(), value);
        }
    }
}

/// A span's fields and when it opened, kept in its extensions.
struct SpanData {
    fields: Map<String, Value>,
    opened: Instant,
}

struct Lines {
    format: LogFormat,
    /// Whether the filter lets debug lines through, and so span durations.
    durations: bool,
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl Lines {
    fn write(&self, level: &Level, msg: &str, fields: Map<String, Value>) {
        let line = match self.format {
            LogFormat::Json => {
                let mut v = Map::new();
                v.insert(
                    "ts".to_owned(),
                    Value::String(
                        driftwatch_policy::Timestamp::from_unix_nanos(
                            driftwatch_engine::now_nanos(),
                        )
                        .to_string(),
                    ),
                );
                v.insert(
                    "level".to_owned(),
                    Value::String(level_name(level).to_owned()),
                );
                v.insert("msg".to_owned(), Value::String(msg.to_owned()));
                v.extend(fields);
                Value::Object(v).to_string()
            }
            LogFormat::Text => {
                let mut s = format!("{}: {msg}", level_name(level));
                for (k, v) in &fields {
                    s.push_str(&format!(" {k}={v}"));
                }
                s
            }
        };
        eprintln!("{line}");
    }
}

impl<S> Layer<S> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanData {
                fields: fields.map,
                opened: Instant::now(),
            });
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            data.fields.extend(fields.map);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The spans' fields first, outermost first, so the event's own win.
        let mut all = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(data) = span.extensions().get::<SpanData>() {
                    all.extend(data.fields.clone());
                }
            }
        }
        all.extend(fields.map);
        self.write(
            event.metadata().level(),
            fields.message.as_deref().unwrap_or(""),
            all,
        );
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if !self.durations {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(data) = ext.get::<SpanData>() else {
            return;
        };
        let mut fields = data.fields.clone();
        fields.insert(
            "duration_ms".to_owned(),
            Value::from(data.opened.elapsed().as_secs_f64() * 1e3),
        );
        self.write(&Level::DEBUG, &format!("{} done", span.name()), fields);
    }
}

/// Installs the subscriber: `level` (a filter such as `info` or `driftwatch_service=debug`)
/// unless `RUST_LOG` is set.
pub fn init(format: LogFormat, level: &str) {
    // A bare level is for driftwatch's own lines; other crates (HTTP, TLS) stay at warn.
    // kube's request tracing logs every transport failure at error level, which driftwatch
    // reports itself with the cluster and context: its line would only repeat it.
    let directives = if level.contains(['=', ',']) {
        level.to_owned()
    } else {
        format!("warn,kube_client::client::builder=off,driftwatch={level}")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&directives))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let durations = Layer::<tracing_subscriber::Registry>::max_level_hint(&filter)
        .is_none_or(|max| max >= tracing::level_filters::LevelFilter::DEBUG);
    let _ = tracing_subscriber::registry()
        .with(Lines { format, durations }.with_filter(filter))
        .try_init();
}
