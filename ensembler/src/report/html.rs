//! The few HTML pieces the report is made of: escaped text, tables, folded sections and
//! pictures embedded as data URIs (the page is one file that needs no network).

use base64::Engine;

/// `text` with HTML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table of escaped cells under `headers`.
pub fn table<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> String {
    let mut html = String::from("<table>\n<tr>");
    for h in headers {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr>\n");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!("<td>{}</td>", escape(cell.as_ref())));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// A folded section: `summary` (escaped) shown, `body` (HTML) behind it.
pub fn details(summary: &str, body: &str, open: bool) -> String {
    let open = if open { " open" } else { "" };
    format!(
        "<details{open}><summary>{}</summary>\n{body}</details>\n",
        escape(summary)
    )
}

/// A PNG embedded as a data URI, with alternative text.
pub fn png(bytes: &[u8], alt: &str) -> String {
    format!(
        "<img src=\"data:image/png;base64,{}\" alt=\"{}\">\n",
        base64::engine::general_purpose::STANDARD.encode(bytes),
        escape(alt)
    )
}

/// A paragraph of escaped text.
pub fn para(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// Preformatted escaped text.
pub fn pre(text: &str) -> String {
    format!("<pre>{}</pre>\n", escape(text))
}

/// A number as the report shows it: 4 decimals, "n/a" when not finite.
pub fn number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "n/a".into()
    }
}

/// The whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n{body}</body>\n</html>\n",
        escape(title),
        escape(title)
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:72em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}\
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left;vertical-align:top}\
th{background:#eee}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}\
img{max-width:100%;display:block;margin:.5em 0}summary{cursor:pointer;font-weight:bold}\
details{margin:.4em 0}.missing{color:#a00}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_it_goes() {
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
        let t = table(&["k<"], &[vec!["<script>"]]);
        assert!(t.contains("<th>k&lt;</th>") && t.contains("<td>&lt;script&gt;</td>"));
        assert!(details("x & y", "<p>b</p>", true).starts_with("<details open><summary>x &amp; y"));
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(number(0.123456), "0.1235");
    }

    #[test]
    fn pictures_are_embedded() {
        let img = png(&[1, 2, 3], "a \"b\"");
        assert!(img.contains("src=\"data:image/png;base64,AQID\""));
        assert!(img.contains("alt=\"a &quot;b&quot;\""));
    }
}
