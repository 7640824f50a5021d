//! Reads an existing `diamond.conf` (configobj INI) so a Diamond host switches without edits.
//!
//! What is read:
//! - `[server]`: `handlers` (which of the handler sections are used),
//!   `collectors_config_path` (one `<Section>.conf` per collector, merged last),
//!   `handlers_config_path` (one `<Handler>.conf` per handler).
//! - `[configs]`: `path` and `extension` (default `.conf`): every such file is merged over the
//!   main file, in name order, before the per-collector files.
//! - `[handlers]`: `[[default]]`, `[[GraphiteHandler]]` (`host`, `port` 2003, `proto` tcp/udp,
//!   `timeout` 15, `batch`), `[[GraphitePickleHandler]]` (port 2004), `[[ArchiveHandler]]`
//!   (`log_file`, `days` 7). Other handlers are skipped and listed.
//! - `[collectors]`: `[[default]]` and one `[[XCollector]]` (or `[[NginxCollector web2]]`)
//!   section per collector; a collector runs when `enabled` is true (Diamond's booleans).
//!   Precedence: the collector's defaults, `[[default]]`, its section, its file. A second
//!   instance (`[[NginxCollector web2]]`) takes `[[default]]` and its own section only, as in
//!   Diamond. Collectors we do not have are skipped and listed.
//!
//! Relative paths (`collectors_config_path`, `[configs] path`) are taken from the directory
//! of diamond.conf. Logging sections (`[loggers]`, `[formatters]`, ...) are ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::{AgentConfig, DIAMOND_DEFAULT_INTERVAL_SECS, Layer, RawConfig, resolve};
use super::error::{AgentError, Origin};
use super::hostname::HostNames;
use super::registry::Registry;
use crate::sender::{DestinationConfig, DestinationKind, Protocol, SenderConfig};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) value: String,
    pub(crate) origin: Origin,
}

/// A configobj section: its keys and subsections, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Section {
    pub(crate) keys: Vec<(String, Entry)>,
    pub(crate) subs: Vec<(String, Section)>,
    pub(crate) origin: Origin,
}

impl Section {
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, e)| e)
    }

    pub(crate) fn sub(&self, name: &str) -> Option<&Section> {
        self.subs.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    fn sub_mut(&mut self, name: &str, origin: &Origin) -> &mut Section {
        let i = match self.subs.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let s = Section { origin: origin.clone(), ..Section::default() };
                self.subs.push((name.to_owned(), s));
                self.subs.len() - 1
            }
        };
        // The index was found or just pushed.
        &mut self.subs[i].1
    }

    fn set(&mut self, key: &str, entry: Entry) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, e)) => *e = entry,
            None => self.keys.push((key.to_owned(), entry)),
        }
    }

    /// configobj's `merge`: keys of `other` win, subsections merge recursively.
    pub(crate) fn merge(&mut self, other: &Section) {
        for (k, e) in &other.keys {
            self.set(k, e.clone());
        }
        for (name, s) in &other.subs {
            self.sub_mut(name, &s.origin).merge(s);
        }
    }

    /// The section's settings, Diamond's boolean words (`True`, `no`, `ON`...) written as
    /// `true`/`false` so a diamond.conf and a TOML file resolve to the same settings; the
    /// one-letter spellings (`t`, `y`, `1`) stay as written, since they are also plain values,
    /// and collectors still read them as booleans.
    fn layer(&self) -> Layer {
        let mut l = Layer::default();
        for (k, e) in &self.keys {
            let value = match e.value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => "true".to_owned(),
                "false" | "no" | "off" => "false".to_owned(),
                _ => e.value.clone(),
            };
            l.set(k, value, e.origin.clone());
        }
        l
    }
}

/// Longest line accepted (a config line longer than this is a mistake, not a setting).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses configobj text: `[a]`, `[[b]]` nesting by bracket count, `key = value`, `#`
/// comments (also after unquoted values), quoted values and comma lists (kept as text,
/// quotes removed, items joined by `,`).
///
/// # Errors
///
/// A line that is neither, a section nested too deep, an unclosed quote, a key given twice in
/// one section (configobj refuses those too): each named with file and line.
pub(crate) fn parse_configobj(text: &str, path: &Path) -> Result<Section, AgentError> {
    let mut root = Section { origin: Origin::new(path, 0), ..Section::default() };
    // The names of the sections from the root to the current one.
    let mut stack: Vec<String> = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let origin = Origin::new(path, i + 1);
        let err = |key: &str, reason: &str| AgentError::config(origin.clone(), key, reason);
        if raw_line.len() > MAX_LINE_BYTES {
            return Err(err("", "line too long"));
        }
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let depth = line.bytes().take_while(|&b| b == b'[').count();
            let inner_end = line
                .find(&"]".repeat(depth))
                .ok_or_else(|| err(line, "unclosed section header"))?;
            let rest = line.get(inner_end + depth..).unwrap_or_default().trim();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Err(err(line, "text after the section header"));
            }
            let name = unquote(line.get(depth..inner_end).unwrap_or_default().trim());
            if name.is_empty() {
                return Err(err(line, "empty section name"));
            }
            if depth > stack.len() + 1 {
                return Err(err(&name, "section nested deeper than its parent"));
            }
            stack.truncate(depth - 1);
            stack.push(name);
            let mut s = &mut root;
            for n in &stack {
                s = s.sub_mut(n, &origin);
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(err(line, "expected `key = value` or a [section]"));
        };
        let key = unquote(k.trim());
        if key.is_empty() {
            return Err(err(line, "empty key"));
        }
        let value = parse_value(v.trim()).map_err(|reason| err(&key, reason))?;
        let mut s = &mut root;
        for n in &stack {
            s = s.sub_mut(n, &origin);
        }
        if s.get(&key).is_some() {
            return Err(err(&key, "given twice in the same section"));
        }
        s.set(&key, Entry { value, origin: origin.clone() });
    }
    Ok(root)
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        s.get(1..s.len() - 1).unwrap_or_default().to_owned()
    } else {
        s.to_owned()
    }
}

fn parse_value(v: &str) -> Result<String, &'static str> {
    if v.starts_with("'''") || v.starts_with("\"\"\"") {
        return Err("triple-quoted values are not supported");
    }
    if !v.starts_with('"') && !v.starts_with('\'') {
        // Unquoted: a `#` starts a comment.
        let end = v.find('#').unwrap_or(v.len());
        return Ok(v.get(..end).unwrap_or_default().trim().to_owned());
    }
    // Quoted items, comma separated.
    let mut items = Vec::new();
    let mut rest = v;
    loop {
        rest = rest.trim_start();
        let Some(q) = rest.chars().next() else { break };
        if rest.starts_with('#') {
            break;
        }
        if q == '"' || q == '\'' {
            let body = rest.get(1..).unwrap_or_default();
            let end = body.find(q).ok_or("unclosed quote")?;
            items.push(body.get(..end).unwrap_or_default().to_owned());
            rest = body.get(end + 1..).unwrap_or_default();
        } else {
            let end = rest.find([',', '#']).unwrap_or(rest.len());
            items.push(rest.get(..end).unwrap_or_default().trim().to_owned());
            rest = rest.get(end..).unwrap_or_default();
        }
        rest = rest.trim_start();
        match rest.chars().next() {
            Some(',') => rest = rest.get(1..).unwrap_or_default(),
            Some('#') | None => break,
            Some(_) => return Err("text after a quoted value"),
        }
    }
    Ok(items.join(","))
}

fn read(path: &Path) -> Result<Section, AgentError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| AgentError::Read { path: path.to_owned(), source })?;
    parse_configobj(&text, path)
}

/// `*.<ext>` files of `dir`, sorted; an absent directory has none.
fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
        .collect();
    out.sort();
    out
}

fn relative(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_owned() } else { base.join(p) }
}

impl AgentConfig {
    /// Reads a diamond.conf and the files it points at.
    ///
    /// # Errors
    ///
    /// A file cannot be read, or a setting is wrong ([`AgentError::Config`] names the file,
    /// line and key).
    pub fn from_diamond(
        path: &Path,
        registry: &Registry,
        names: &HostNames,
    ) -> Result<AgentConfig, AgentError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut conf = read(path)?;
        if let Some(configs) = conf.sub("configs").cloned()
            && let Some(dir) = configs.get("path")
        {
            let ext = configs.get("extension").map_or(".conf", |e| e.value.as_str()).to_owned();
            for f in files_in(&relative(base, &dir.value), &ext) {
                conf.merge(&read(&f)?);
            }
        }
        let server = conf.sub("server").cloned().unwrap_or_default();
        for (setting, section) in
            [("collectors_config_path", "collectors"), ("handlers_config_path", "handlers")]
        {
            let Some(dir) = server.get(setting) else { continue };
            for f in files_in(&relative(base, &dir.value), ".conf") {
                let name = f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let file = read(&f)?;
                let origin = Origin::new(&f, 0);
                conf.sub_mut(section, &origin).sub_mut(&name, &origin).merge(&file);
            }
        }
        let collectors = conf.sub("collectors").cloned().unwrap_or_default();
        let mut raw = RawConfig {
            agent: Layer::default(),
            default: collectors.sub("default").map(Section::layer).unwrap_or_default(),
            collectors: collectors
                .subs
                .iter()
                .filter(|(name, _)| name != "default")
                .map(|(name, s)| (name.clone(), s.origin.clone(), s.layer()))
                .collect(),
            default_set: false,
            enabled_by_default: false,
            default_interval: DIAMOND_DEFAULT_INTERVAL_SECS,
            skip_unknown: true,
            sender: SenderConfig::default(),
            skipped: Vec::new(),
            // Diamond has no statsd server (its StatsdHandler sends to one): nothing to read.
            statsd: None,
        };
        raw.sender = handlers(&conf, &server, &mut raw.skipped)?;
        resolve(raw, registry, names)
    }
}

/// The destinations of `[server] handlers`.
fn handlers(
    conf: &Section,
    server: &Section,
    skipped: &mut Vec<String>,
) -> Result<SenderConfig, AgentError> {
    let Some(list) = server.get("handlers") else { return Ok(SenderConfig::default()) };
    let mut config = SenderConfig::default();
    let all = conf.sub("handlers").cloned().unwrap_or_default();
    let mut destinations = Vec::new();
    for dotted in list.value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let class = dotted.rsplit('.').next().unwrap_or(dotted);
        let mut layer = all.sub("default").map(Section::layer).unwrap_or_default();
        if let Some(s) = all.sub(class) {
            layer.merge(&s.layer());
        }
        let o = &layer.opts;
        let bad = |key: &str, e: crate::Error| {
            AgentError::config(
                layer.origins.get(key).cloned().unwrap_or_else(|| list.origin.clone()),
                key,
                e.to_string(),
            )
        };
        let mut d = DestinationConfig::default();
        match class {
            "GraphiteHandler" | "GraphitePickleHandler" => {
                let pickle = class == "GraphitePickleHandler";
                let port = o
                    .u64_or("port", if pickle { 2004 } else { 2003 })
                    .map_err(|e| bad("port", e))?;
                let host = o.str_or("host", "localhost");
                d.address = format!("{host}:{port}");
                d.protocol = if pickle {
                    Protocol::Pickle
                } else if o.str_or("proto", "tcp").starts_with("udp") {
                    Protocol::Udp
                } else {
                    Protocol::Plaintext
                };
                let timeout = o.f64_or("timeout", 15.0).map_err(|e| bad("timeout", e))?;
                d.timeout = Duration::from_secs_f64(timeout.clamp(0.001, 3600.0));
                // Diamond's `batch` (1 in its example config) is a lower bound here: every
                // run's points go out together anyway.
                let batch = o.u64_or("batch", 1).map_err(|e| bad("batch", e))? as usize;
                d.batch_size = batch.max(d.batch_size);
            }
            "ArchiveHandler" => {
                d.kind = DestinationKind::Archive;
                d.path = Some(PathBuf::from(o.str_or("log_file", "/var/log/diamond/archive.log")));
                d.rotate_days = o.u64_or("days", 7).map_err(|e| bad("days", e))? as u32;
            }
            _ => {
                skipped.push(format!("handler {dotted}"));
                continue;
            }
        }
        if let Err(e) = d.validate() {
            let origin = all.sub(class).map_or_else(|| list.origin.clone(), |s| s.origin.clone());
            return Err(AgentError::config(origin, class, e.to_string()));
        }
        destinations.push(d);
    }
    config.destinations = destinations;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Section {
        parse_configobj(text, Path::new("d.conf")).unwrap()
    }

    #[test]
    fn configobj_sections_nest_by_bracket_count() {
        let s = parse(
            "# top\n[server]\nhandlers = a.B, c.D  # two\n[collectors]\n[[default]]\n\
             hostname_method = fqdn\n[[NginxCollector web2]]\nenabled = 'True'\n\
             req_path = \"/status#x\"\n[[[deeper]]]\nk = v\n[handlers]\nkeys = rotated_file\n",
        );
        assert_eq!(s.sub("server").unwrap().get("handlers").unwrap().value, "a.B, c.D");
        let c = s.sub("collectors").unwrap();
        assert_eq!(c.sub("default").unwrap().get("hostname_method").unwrap().value, "fqdn");
        let n = c.sub("NginxCollector web2").unwrap();
        assert_eq!(n.get("enabled").unwrap().value, "True");
        assert_eq!(n.get("req_path").unwrap().value, "/status#x");
        assert_eq!(n.get("enabled").unwrap().origin.line, 8);
        assert_eq!(n.sub("deeper").unwrap().get("k").unwrap().value, "v");
        assert!(s.sub("handlers").unwrap().get("keys").is_some());
    }

    #[test]
    fn quoted_lists_are_joined() {
        assert_eq!(parse_value("'a', \"b\" , c # x").unwrap(), "a,b,c");
        assert_eq!(parse_value("").unwrap(), "");
        assert!(parse_value("'open").is_err());
        assert!(parse_value("'''x'''").is_err());
    }

    #[test]
    fn broken_lines_are_named() {
        for (text, line) in [
            ("[a]\nno equals sign\n", 2),
            ("[a]\n[[[b]]]\n", 2),
            ("[a]\nk = 1\nk = 2\n", 3),
            ("[a\n", 1),
            ("[a]\nk = 'x' y\n", 2),
        ] {
            let err = parse_configobj(text, Path::new("/etc/diamond/diamond.conf")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("/etc/diamond/diamond.conf:{line}:")),
                "{text:?}: {msg}"
            );
        }
    }

    #[test]
    fn merge_is_configobjs() {
        let mut a = parse("[c]\nx = 1\n[[s]]\ny = 2\n");
        a.merge(&parse("[c]\nx = 3\n[[s]]\nz = 4\n[[t]]\n"));
        let c = a.sub("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, "3");
        assert_eq!(c.sub("s").unwrap().get("y").unwrap().value, "2");
        assert_eq!(c.sub("s").unwrap().get("z").unwrap().value, "4");
        assert!(c.sub("t").is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_configobj(&text, Path::new("x"));
        }

        #[test]
        fn simple_settings_round_trip(key in "[a-z_]{1,12}", value in "[A-Za-z0-9_./:-]{0,30}") {
            let s = parse_configobj(&format!("[sec]\n{key} = {value}\n"), Path::new("x")).unwrap();
            prop_assert_eq!(&s.sub("sec").unwrap().get(&key).unwrap().value, &value);
        }
    }
}
