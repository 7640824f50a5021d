//! `whisper-info`: prints a file's header, one field of it, or all of it as JSON.

use clap::Parser;

use super::{Failure, Io, Tool};
use crate::pyfmt::{self, JsonStyle, PyValue};

/// Print the header of a whisper file.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-info",
    override_usage = "whisper-info [options] path [field]",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Info {
    /// Output results in JSON form
    #[arg(long)]
    json: bool,

    /// The whisper file, then optionally one field to print (aggregationMethod, maxRetention,
    /// xFilesFactor, archives, fileSize)
    #[arg(value_name = "path [field]")]
    args: Vec<String>,
}

/// The header as whisper.py's `info()` dict plus the script's `fileSize`, in its key order.
pub(crate) fn info_dict(header: &whisper::Header, file_size: u64) -> Vec<(String, PyValue)> {
    let archives = header
        .archives()
        .iter()
        .map(|a| {
            PyValue::Dict(vec![
                ("offset".into(), PyValue::Int(a.offset().into())),
                ("secondsPerPoint".into(), PyValue::Int(a.seconds_per_point().into())),
                ("points".into(), PyValue::Int(a.points().into())),
                ("retention".into(), PyValue::Int(a.retention().into())),
                ("size".into(), PyValue::Int(a.size().into())),
            ])
        })
        .collect();
    vec![
        ("aggregationMethod".into(), PyValue::Str(header.aggregation_method().name().into())),
        ("maxRetention".into(), PyValue::Int(header.max_retention().into())),
        ("xFilesFactor".into(), PyValue::Float(header.x_files_factor().into())),
        ("archives".into(), PyValue::List(archives)),
        ("fileSize".into(), PyValue::Int(file_size.into())),
    ]
}

impl Tool for Info {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let Some(path) = self.args.first() else {
            io.print_help::<Info>()?;
            return Ok(1);
        };
        // `if field:` in the script: an empty field means no field.
        let field = self.args.get(1).filter(|f| !f.is_empty());

        let header = whisper::info(path)?;
        let file_size = std::fs::metadata(path)
            .map_err(|e| Failure::error(pyfmt::os_error(&e, path.as_ref())))?
            .len();
        let info = info_dict(&header, file_size);
        let out = io.out();

        if let Some(field) = field {
            return match info.iter().find(|(key, _)| key == field) {
                Some((_, value)) => {
                    writeln!(out, "{}", value.to_py_str())?;
                    Ok(0)
                }
                None => {
                    let keys: Vec<&str> = info.iter().map(|(k, _)| k.as_str()).collect();
                    writeln!(
                        out,
                        "Unknown field \"{field}\". Valid fields are {}",
                        keys.join(",")
                    )?;
                    Ok(1)
                }
            };
        }

        if self.json {
            let style = JsonStyle {
                indent: Some(2),
                item_separator: ",",
                key_separator: ": ",
                sort_keys: false,
            };
            writeln!(out, "{}", pyfmt::json_dumps(&PyValue::Dict(info), &style))?;
            return Ok(0);
        }

        // The script pops `archives` and prints the other keys first.
        let mut archives = &[][..];
        for (key, value) in &info {
            match value {
                PyValue::List(list) if key == "archives" => archives = list,
                _ => writeln!(out, "{key}: {}", value.to_py_str())?,
            }
        }
        writeln!(out)?;
        for (i, archive) in archives.iter().enumerate() {
            writeln!(out, "Archive {i}")?;
            if let PyValue::Dict(fields) = archive {
                for (key, value) in fields {
                    writeln!(out, "{key}: {}", value.to_py_str())?;
                }
            }
            writeln!(out)?;
        }
        Ok(0)
    }
}
