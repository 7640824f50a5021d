//! The UI's files, compiled into the binary: the page, its script and style, and the vendored
//! uPlot (see `update-vendor.sh`). No build step runs npm; the vendored files are committed.

/// One embedded file: its bytes and content type.
pub(crate) struct Asset {
    pub(crate) bytes: &'static [u8],
    pub(crate) content_type: &'static str,
}

/// The page at `/`.
pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The files under `/ui/assets/`, by name.
pub(crate) fn asset(name: &str) -> Option<Asset> {
    let (bytes, content_type): (&'static [u8], &'static str) = match name {
        "app.js" => (include_bytes!("../assets/app.js"), "text/javascript; charset=utf-8"),
        "app.css" => (include_bytes!("../assets/app.css"), "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => {
            (include_bytes!("../assets/vendor/uPlot.iife.min.js"), "text/javascript; charset=utf-8")
        }
        "uPlot.min.css" => {
            (include_bytes!("../assets/vendor/uPlot.min.css"), "text/css; charset=utf-8")
        }
        _ => return None,
    };
    Some(Asset { bytes, content_type })
}
