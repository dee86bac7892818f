//! Turning fetched documents into items: JSON feeds, RSS 2.0, Atom, HTML
//! pages and sitemaps. Pure functions over bytes.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::domain::JsonPointers;

/// One post or page found in a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    /// The tenant's id for it, if the document gives one.
    pub id: Option<String>,
    /// Its URL, if the document gives one.
    pub url: Option<String>,
    /// Its text.
    pub text: String,
}

/// Posts of a JSON feed found through `pointers`.
pub fn json_items(body: &[u8], pointers: &JsonPointers) -> Result<Vec<Item>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the feed is not JSON: {e}"))?;
    let list = doc
        .pointer(&pointers.items)
        .and_then(|v| v.as_array())
        .ok_or_else(|| format!("no array at pointer `{}`", pointers.items))?;
    let text_of = |v: &serde_json::Value, p: &str| -> Option<String> {
        match v.pointer(p)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(list
        .iter()
        .filter_map(|post| {
            let text = text_of(post, &pointers.text)?;
            Some(Item {
                id: pointers.id.as_deref().and_then(|p| text_of(post, p)),
                url: pointers.url.as_deref().and_then(|p| text_of(post, p)),
                text,
            })
        })
        .collect())
}

fn local(name: &[u8]) -> Vec<u8> {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => name[i + 1..].to_ascii_lowercase(),
        None => name.to_ascii_lowercase(),
    }
}

/// Items of an RSS 2.0 or Atom feed (either is accepted for both kinds).
pub fn feed_items(body: &[u8]) -> Result<Vec<Item>, String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut items = Vec::new();
    let mut current: Option<(Item, String, String)> = None; // item, title, body
    let mut field: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Err(e) => return Err(format!("bad XML at byte {}: {e}", reader.buffer_position())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                let name = local(e.name().as_ref());
                if name == b"item" || name == b"entry" {
                    current = Some((Item::default(), String::new(), String::new()));
                } else if current.is_some() {
                    if name == b"link" {
                        link_href(&e, &mut current);
                    }
                    field = name;
                }
            }
            Ok(Event::Empty(e)) => {
                if local(e.name().as_ref()) == b"link" {
                    link_href(&e, &mut current);
                }
            }
            Ok(Event::End(e)) => {
                let name = local(e.name().as_ref());
                if name == b"item" || name == b"entry" {
                    if let Some((mut item, title, text)) = current.take() {
                        item.text = join_text(&title, &html_text(text.as_bytes()));
                        if !item.text.is_empty() {
                            items.push(item);
                        }
                    }
                }
                field.clear();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| format!("bad XML text: {e}"))?;
                field_text(&field, &text, &mut current);
            }
            Ok(Event::CData(t)) => {
                let text = String::from_utf8_lossy(&t.into_inner()).into_owned();
                field_text(&field, &text, &mut current);
            }
            Ok(_) => {}
        }
        buf.clear();
    }
    Ok(items)
}

fn link_href(e: &quick_xml::events::BytesStart<'_>, current: &mut Option<(Item, String, String)>) {
    let Some((item, _, _)) = current else { return };
    if item.url.is_some() {
        return;
    }
    for attr in e.attributes().flatten() {
        if attr.key.as_ref() == b"href" {
            if let Ok(v) = attr.unescape_value() {
                item.url = Some(v.into_owned());
            }
        }
    }
}

fn field_text(field: &[u8], text: &str, current: &mut Option<(Item, String, String)>) {
    let Some((item, title, body)) = current else {
        return;
    };
    match field {
        b"title" => title.push_str(text),
        b"description" | b"summary" | b"content" | b"encoded" => {
            if !body.is_empty() {
                body.push(' ');
            }
            body.push_str(text)
        }
        b"link" if item.url.is_none() => item.url = Some(text.trim().to_string()),
        b"guid" | b"id" if item.id.is_none() => item.id = Some(text.trim().to_string()),
        _ => {}
    }
}

fn join_text(a: &str, b: &str) -> String {
    match (a.trim(), b.trim()) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}. {b}"),
    }
}

/// `<loc>` URLs of a sitemap, and whether it is a sitemap index (whose
/// locations are further sitemaps).
pub fn sitemap_urls(body: &[u8]) -> Result<(bool, Vec<String>), String> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut urls = Vec::new();
    let mut in_loc = false;
    let mut is_index = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Err(e) => return Err(format!("bad XML at byte {}: {e}", reader.buffer_position())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                let name = local(e.name().as_ref());
                is_index |= name == b"sitemapindex";
                in_loc = name == b"loc";
            }
            Ok(Event::End(_)) => in_loc = false,
            Ok(Event::Text(t)) if in_loc => {
                let text = t.unescape().map_err(|e| format!("bad XML text: {e}"))?;
                urls.push(text.trim().to_string());
            }
            Ok(_) => {}
        }
        buf.clear();
    }
    Ok((is_index, urls))
}

/// The readable text of an HTML document or fragment: tags become spaces,
/// `script`, `style`, `noscript`, `template` and comments are dropped,
/// entities decoded, whitespace folded.
pub fn html_text(body: &[u8]) -> String {
    let html = String::from_utf8_lossy(body);
    let s = html.as_ref();
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("<!--") {
            i += lower[i..].find("-->").map_or(s.len() - i, |e| e + 3);
            continue;
        }
        if rest.starts_with('<') {
            let end = lower[i..].find('>').map_or(s.len(), |e| i + e + 1);
            let tag = &lower[i + 1..end.saturating_sub(1).max(i + 1)];
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            i = end;
            if matches!(name.as_str(), "script" | "style" | "noscript" | "template")
                && !closing
                && !tag.ends_with('/')
            {
                let close = format!("</{name}");
                i = lower[i..].find(&close).map_or(s.len(), |e| {
                    let after = i + e;
                    lower[after..].find('>').map_or(s.len(), |g| after + g + 1)
                });
            }
            // Inline markup joins words; everything else separates them.
            if !INLINE.contains(&name.as_str()) {
                out.push(' ');
            }
            continue;
        }
        let next = rest.find('<').map_or(s.len(), |n| i + n);
        decode_entities(&s[i..next], &mut out);
        i = next;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q",
    "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var",
];

fn decode_entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest.find(';').filter(|&n| n <= 10);
        let decoded = semi.and_then(|n| {
            let name = &rest[1..n];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, n))
        });
        match decoded {
            Some((c, n)) => {
                out.push(c);
                rest = &rest[n + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_feed_items_follow_the_pointers() {
        let body = br#"{"data":{"posts":[{"id":7,"body":"hello","link":"https://t.example/7"},{"id":8,"nobody":1},{"id":9,"body":"bye"}]}}"#;
        let p = JsonPointers {
            items: "/data/posts".into(),
            text: "/body".into(),
            url: Some("/link".into()),
            id: Some("/id".into()),
        };
        let items = json_items(body, &p).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id.as_deref(), Some("7"));
        assert_eq!(items[0].url.as_deref(), Some("https://t.example/7"));
        assert_eq!(items[1].text, "bye");
        assert!(json_items(b"[1", &p).is_err());
        assert!(json_items(b"{}", &p).unwrap_err().contains("/data/posts"));
    }

    #[test]
    fn rss_items_keep_title_text_link_and_guid() {
        let body = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
          <item><title>One</title><link>https://t.example/1</link><guid>g1</guid>
          <description>&lt;p&gt;first &amp;amp; best&lt;/p&gt;</description></item>
          <item><title>Two</title><description><![CDATA[<b>second</b> post]]></description></item>
        </channel></rss>"#;
        let items = feed_items(body).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text, "One. first & best");
        assert_eq!(items[0].url.as_deref(), Some("https://t.example/1"));
        assert_eq!(items[0].id.as_deref(), Some("g1"));
        assert_eq!(items[1].text, "Two. second post");
    }

    #[test]
    fn atom_entries_keep_link_href_and_content() {
        let body = br#"<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>
          <entry><id>urn:1</id><title>A</title><link href="https://t.example/a"/>
          <content type="html">&lt;i&gt;alpha&lt;/i&gt;</content></entry></feed>"#;
        let items = feed_items(body).unwrap();
        assert_eq!(
            items,
            vec![Item {
                id: Some("urn:1".into()),
                url: Some("https://t.example/a".into()),
                text: "A. alpha".into()
            }]
        );
    }

    #[test]
    fn sitemap_locations_are_listed() {
        let body = br#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
          <url><loc>https://t.example/a</loc><lastmod>2024-01-01</lastmod></url>
          <url><loc> https://t.example/b?x=1&amp;y=2 </loc></url></urlset>"#;
        assert_eq!(
            sitemap_urls(body).unwrap(),
            (
                false,
                vec![
                    "https://t.example/a".to_string(),
                    "https://t.example/b?x=1&y=2".to_string()
                ]
            )
        );
        let index = br#"<sitemapindex><sitemap><loc>/s1.xml</loc></sitemap></sitemapindex>"#;
        assert_eq!(
            sitemap_urls(index).unwrap(),
            (true, vec!["/s1.xml".to_string()])
        );
    }

    #[test]
    fn html_text_drops_scripts_styles_and_comments() {
        let html = br#"<html><head><title>Hi</title><style>p{color:red}</style>
          <script type="x">var storm = "capitol";</script></head>
          <body><!-- hidden --><p>Hello&nbsp;&amp; <b>welcome</b>&#33; &#x41;</p>
          <SCRIPT>alert(1)</SCRIPT><noscript>no</noscript>tail &bogus; a&b</body></html>"#;
        assert_eq!(html_text(html), "Hi Hello & welcome! A tail &bogus; a&b");
    }
}
