//! The two forms libpq accepts for a connection, read into keyword/value
//! pairs: the URI (`postgresql://user:pw@h1:5432,h2:5433/db?sslmode=…`,
//! several hosts allowed) and the keyword form
//! (`host=h port=5432 dbname=db password='a b'`).
//! <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING>

use super::UrlError;

/// The keywords a connection string may hold, with libpq's meaning.
pub(super) const KEYWORDS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "options",
    "target_session_attrs",
    "connect_timeout",
    "application_name",
];

/// Keyword/value pairs in the order given; a later one replaces an earlier.
pub(super) type Pairs = Vec<(String, String)>;

/// Reads either form. Anything else is not a connection string.
///
/// Nothing of an unparsed string is ever echoed in an error (it may hold
/// a password): at most a URL's scheme, or a parameter name that looks
/// like one.
pub(super) fn pairs(s: &str) -> Result<Pairs, UrlError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UrlError::Empty);
    }
    let pairs = match s.split_once("://") {
        // Schemes are case-insensitive (RFC 3986).
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("postgresql")
                || scheme.eq_ignore_ascii_case("postgres") =>
        {
            uri(rest)?
        }
        Some((scheme, _)) if is_scheme(scheme) => {
            return Err(UrlError::Scheme(scheme.to_owned()));
        }
        _ if s.contains('=') => keywords(s)?,
        _ => return Err(UrlError::NotPostgres),
    };
    if let Some((name, _)) = pairs.iter().find(|(k, _)| !KEYWORDS.contains(&k.as_str())) {
        return Err(UrlError::UnknownParameter(shown_name(name)));
    }
    Ok(pairs)
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// A parameter's name for an error: as given when it looks like one of
/// libpq's keywords (lower case, at most 40 characters), else not at all:
/// a mangled string puts a password where a name should be.
pub(super) fn shown_name(name: &str) -> String {
    let keyword_like = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if keyword_like {
        name.to_owned()
    } else {
        "(not shown: not a parameter name)".to_owned()
    }
}

/// `[user[:password]@][host[:port][,host[:port]…]][/dbname][?k=v&…]`.
fn uri(rest: &str) -> Result<Pairs, UrlError> {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let mut out = Pairs::new();
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, hostspec)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                out.push(("user".into(), decode(user)?));
            }
            if let Some(p) = password {
                out.push(("password".into(), decode(p)?));
            }
            hostspec
        }
        None => authority,
    };
    if !hostspec.is_empty() {
        let (mut hosts, mut ports) = (Vec::new(), Vec::new());
        for spec in hostspec.split(',') {
            let (host, port) = host_and_port(spec)?;
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            out.push(("host".into(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            out.push(("port".into(), ports.join(",")));
        }
    }
    if !path.is_empty() {
        out.push(("dbname".into(), decode(path)?));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| UrlError::BadParameter {
            name: shown_name(pair),
            message: "expected `name=value`".into(),
        })?;
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// `host`, `host:port`, `[::1]:port`, `:port` or empty.
fn host_and_port(spec: &str) -> Result<(String, String), UrlError> {
    let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::NotPostgres)?;
        (host, after.strip_prefix(':').unwrap_or(""))
    } else {
        spec.split_once(':').unwrap_or((spec, ""))
    };
    Ok((decode(host)?, decode(port)?))
}

/// libpq decodes `%XX` and nothing else (a `+` stays a `+`).
fn decode(s: &str) -> Result<String, UrlError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| UrlError::NotPostgres)
}

/// `keyword = value …`, a value single-quoted when it holds spaces, with
/// `\'` and `\\` inside.
fn keywords(s: &str) -> Result<Pairs, UrlError> {
    let mut out = Pairs::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not followed by `=`: not a name at all unless it is a known
            // one (a bare password where `password=` was forgotten).
            return Err(UrlError::BadParameter {
                name: if KEYWORDS.contains(&key.as_str()) {
                    key
                } else {
                    shown_name("")
                },
                message: "expected `keyword=value`".into(),
            });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(UrlError::BadParameter {
                            name: key,
                            message: "unterminated quoted value".into(),
                        });
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a Pairs, k: &str) -> Option<&'a str> {
        p.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn uris_with_several_hosts_and_ipv6() {
        let p = pairs("postgresql://app:p%40ss@db1:5432,[::1]:5433,db3/shop?sslmode=require&options=-c%20search_path%3Dapp").unwrap();
        assert_eq!(get(&p, "user"), Some("app"));
        assert_eq!(get(&p, "password"), Some("p@ss"));
        assert_eq!(get(&p, "host"), Some("db1,::1,db3"));
        assert_eq!(get(&p, "port"), Some("5432,5433,"));
        assert_eq!(get(&p, "dbname"), Some("shop"));
        assert_eq!(get(&p, "options"), Some("-c search_path=app"));
        // A `+` is a `+`, as in libpq.
        let p = pairs("postgres://u:a+b@h/d").unwrap();
        assert_eq!(get(&p, "password"), Some("a+b"));
        // Nothing but the scheme: every value from the environment.
        assert!(pairs("postgresql://").unwrap().is_empty());
    }

    #[test]
    fn the_keyword_form_with_quotes_and_escapes() {
        let p =
            pairs(r"host=db port = 6432 dbname=shop password='it\'s a \\secret' user=app").unwrap();
        assert_eq!(get(&p, "port"), Some("6432"));
        assert_eq!(get(&p, "password"), Some(r"it's a \secret"));
        assert_eq!(get(&p, "user"), Some("app"));
        assert!(matches!(
            pairs("host=db sslmode"),
            Err(UrlError::BadParameter { .. })
        ));
        assert!(matches!(
            pairs("host='db"),
            Err(UrlError::BadParameter { .. })
        ));
    }

    #[test]
    fn unknown_keywords_are_named() {
        for s in ["postgres://h/d?hostaddr=1.2.3.4", "host=h service=prod"] {
            assert!(
                matches!(pairs(s), Err(UrlError::UnknownParameter(_))),
                "{s}"
            );
        }
        assert!(matches!(pairs("mysql://h/d"), Err(UrlError::Scheme(s)) if s == "mysql"));
    }
}
