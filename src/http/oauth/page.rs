//! The two HTML pages of the authorization endpoint: sign-in and error. Plain HTML and an
//! inline style, no script; every value shown is escaped, and the headers forbid framing.

use http::{HeaderValue, Response, StatusCode};

use super::no_store;
use crate::http::response::Body;

/// Text for HTML, with the five characters that could end an element or attribute escaped.
fn escape(text: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:1rem 0 .3rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;background:#1f5fbf;color:#fff;border:0;border-radius:4px}\
.error{background:#fdecea;color:#8a1c12;padding:.6rem;border-radius:4px}.small{color:#555;font-size:.85rem}";

fn html(status: StatusCode, title: &str, main: &str) -> Response<Body> {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{main}</main></body></html>",
        escape(title)
    );
    let mut r = no_store(status, "text/html; charset=utf-8", page.into_bytes());
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

/// The sign-in page; `login` fills the name field again after a failure.
pub fn login_page(status: StatusCode, client: &str, ticket: &str, login: &str, message: &str) -> Response<Body> {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
    };
    let main = format!(
        "<h1>Sign in to authorize {client}</h1>\
         <p class=\"small\">The application <b>{client}</b> asks to manage users and groups through this SCIM gateway. \
         Sign in with your directory account; it must be in the gateway's administrators group.</p>{message}\
         <form method=\"post\" action=\"authorize\"><input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
         <label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{login}\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" id=\"submit\">Sign in and authorize</button></form>",
        client = escape(client),
        ticket = escape(ticket),
        login = escape(login),
    );
    html(status, "Sign in – scim-gateway", &main)
}

pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response<Body> {
    let main = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p class=\"small\">scim-gateway did not send you back to the \
         application. Check the application's OAuth settings against the gateway's [auth.oauth] configuration.</p>",
        escape(title),
        escape(detail)
    );
    html(status, &format!("{title} – scim-gateway"), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<script>"a"&'b'</script>"#), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;");
    }
}
