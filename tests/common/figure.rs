//! Whether a figure file is well-formed: shared by the tests that write them.

use std::path::Path;

/// A PNG that decodes to the figure's size, or an SVG that parses as XML
/// (with its title, when it has one, as text).
pub fn check_figure(path: &Path, title: Option<&str>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
            let mut reader = decoder.read_info().expect("a PNG header");
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).expect("PNG data");
            assert_eq!((info.width, info.height), (800, 560), "{}", path.display());
            // Not a blank canvas.
            assert!(buf.iter().any(|&b| b < 200), "{} is blank", path.display());
        }
        Some("svg") => {
            let text = String::from_utf8(bytes).expect("UTF-8");
            let doc = roxmltree::Document::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            if let Some(t) = title {
                assert!(
                    doc.descendants()
                        .any(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some(t)),
                    "{} has no title {t}",
                    path.display()
                );
            }
        }
        other => panic!("unexpected figure type {other:?}"),
    }
}
