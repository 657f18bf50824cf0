//! The `maintenance` section of `snapguard.yml`: a list of switches, each a
//! map with exactly one of `command`, `http`, `file`, `postgres_fence`.
//!
//! Values may use `${VAR}` (webhook tokens, hosts); in `command` switches the
//! variables snapguard sets itself (`SNAPGUARD_DEPLOY_ID`, …) are left for
//! the shell.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use std::path::PathBuf;

use super::{ConfigError, Origin, Scalar, interpolate_at, keep_hook_vars, parse_duration};
use crate::db::Secret;

/// One configured switch.
#[derive(Debug, Clone)]
pub enum Switch {
    /// Shell commands (`heroku maintenance:on`, `kubectl scale …`).
    Command(CommandSwitch),
    /// Webhooks (a load balancer's or a status page's API).
    Http(HttpSwitch),
    /// A flag file the application checks (Capistrano, Rails).
    File(FileSwitch),
    /// Locks the application's database roles out.
    Fence(FenceSwitch),
}

/// `command: { on, off, timeout }`.
#[derive(Debug, Clone)]
pub struct CommandSwitch {
    /// Turns maintenance on.
    pub on: String,
    /// Turns it off.
    pub off: String,
    /// How long each may run (default 60 s).
    pub timeout: Duration,
}

/// `http: { on, off, timeout, retries }`.
#[derive(Debug, Clone)]
pub struct HttpSwitch {
    /// The request that turns maintenance on.
    pub on: HttpCall,
    /// The request that turns it off.
    pub off: HttpCall,
    /// Attempts after the first, on an error or an unexpected status.
    pub retries: u32,
}

impl From<HttpSwitch> for Switch {
    fn from(h: HttpSwitch) -> Self {
        Switch::Http(h)
    }
}

/// One webhook call.
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// Method, URL, headers, body, timeout.
    pub request: crate::http::Request,
    /// The status that means success; any 2xx when unset.
    pub expect_status: Option<u16>,
}

/// `file: { path, content }`.
#[derive(Debug, Clone)]
pub struct FileSwitch {
    /// The flag file, relative paths from the config file's directory.
    pub path: PathBuf,
    /// What it contains.
    pub content: String,
}

/// `postgres_fence: { roles, wait }`.
#[derive(Debug, Clone)]
pub struct FenceSwitch {
    /// The roles the application connects as.
    pub roles: Vec<String>,
    /// How long to wait for their sessions to end (default 30 s).
    pub wait: Duration,
    /// Where it is configured, for messages.
    pub origin: Origin,
}

/// One list item as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchEntry {
    command: Option<FileCommand>,
    http: Option<FileHttp>,
    file: Option<FileFlag>,
    postgres_fence: Option<FileFence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCommand {
    on: Spanned<String>,
    off: Spanned<String>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    on: FileCall,
    off: FileCall,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCall {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    body: Option<Spanned<String>>,
    status: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFlag {
    path: Spanned<String>,
    content: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFence {
    roles: Spanned<Vec<Spanned<String>>>,
    wait: Option<Spanned<String>>,
}

/// One `notify:` item as written: a webhook told the outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileWebhook {
    url: Spanned<String>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    timeout: Option<Spanned<String>>,
}

/// Resolves `notify:`: webhooks configured as maintenance webhooks are
/// (`${VAR}` in the URL and headers, which are treated as secrets), each a
/// `POST` of the outcome.
pub(crate) fn resolve_notify(
    list: Option<Vec<FileWebhook>>,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<HttpCall>, ConfigError> {
    let r = Resolver { path, env };
    list.unwrap_or_default()
        .into_iter()
        .map(|w| {
            let timeout = r.duration(&w.timeout, "notify.timeout", 10)?;
            let call = FileCall {
                method: None,
                url: w.url,
                headers: w.headers,
                body: None,
                status: None,
            };
            r.call(call, "notify", timeout)
        })
        .collect()
}

/// Resolves the parsed section; `path` is the config file, `base_dir` its
/// directory (where relative flag-file paths start).
pub(crate) fn resolve(
    list: Option<Vec<Spanned<SwitchEntry>>>,
    path: &Path,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Switch>, ConfigError> {
    let r = Resolver { path, env };
    let mut out = Vec::new();
    for item in list.unwrap_or_default() {
        let origin = r.at(&item.referenced);
        let SwitchEntry {
            command,
            http,
            file,
            postgres_fence,
        } = item.value;
        let set = [
            command.is_some(),
            http.is_some(),
            file.is_some(),
            postgres_fence.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(ConfigError::Invalid {
                origin,
                key: "maintenance",
                message: "each switch has exactly one of `command`, `http`, `file`, `postgres_fence`; write several list items for several switches".into(),
            });
        }
        let switch = if let Some(c) = command {
            Switch::Command(CommandSwitch {
                on: r.command(&c.on, "maintenance.command.on")?,
                off: r.command(&c.off, "maintenance.command.off")?,
                timeout: r.duration(&c.timeout, "maintenance.command.timeout", 60)?,
            })
        } else if let Some(h) = http {
            let timeout = r.duration(&h.timeout, "maintenance.http.timeout", 10)?;
            let retries = match &h.retries {
                None => 3,
                Some(v) => v.value.0.parse::<u32>().map_err(|_| {
                    r.invalid(
                        &v.referenced,
                        "maintenance.http.retries",
                        format!("`{}` is not a whole number", v.value.0),
                    )
                })?,
            };
            HttpSwitch {
                on: r.call(h.on, "maintenance.http.on", timeout)?,
                off: r.call(h.off, "maintenance.http.off", timeout)?,
                retries,
            }
            .into()
        } else if let Some(f) = file {
            let raw = r.string(&f.path, "maintenance.file.path")?;
            if raw.trim().is_empty() {
                return Err(r.invalid(
                    &f.path.referenced,
                    "maintenance.file.path",
                    "empty path".into(),
                ));
            }
            Switch::File(FileSwitch {
                path: base_dir.join(raw),
                content: match &f.content {
                    Some(c) => r.string(c, "maintenance.file.content")?,
                    None => "maintenance\n".into(),
                },
            })
        } else if let Some(f) = postgres_fence {
            if f.roles.value.is_empty() {
                return Err(r.invalid(
                    &f.roles.referenced,
                    "maintenance.postgres_fence.roles",
                    "name at least one role: the roles the application connects as".into(),
                ));
            }
            let mut roles = Vec::new();
            for role in &f.roles.value {
                roles.push(r.string(role, "maintenance.postgres_fence.roles")?);
            }
            Switch::Fence(FenceSwitch {
                roles,
                wait: r.duration(&f.wait, "maintenance.postgres_fence.wait", 30)?,
                origin: origin.clone(),
            })
        } else {
            unreachable!("exactly one kind is set")
        };
        out.push(switch);
    }
    Ok(out)
}

struct Resolver<'a> {
    path: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    fn at(&self, l: &serde_saphyr::Location) -> Origin {
        Origin::File {
            path: self.path.to_path_buf(),
            line: l.line(),
            column: l.column(),
        }
    }

    fn invalid(
        &self,
        l: &serde_saphyr::Location,
        key: &'static str,
        message: String,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: self.at(l),
            key,
            message,
        }
    }

    fn string(&self, v: &Spanned<String>, key: &'static str) -> Result<String, ConfigError> {
        interpolate_at(&v.value, &self.at(&v.referenced), key, self.env)
    }

    fn command(&self, v: &Spanned<String>, key: &'static str) -> Result<String, ConfigError> {
        let env = |name: &str| keep_hook_vars(name, self.env);
        let command = interpolate_at(&v.value, &self.at(&v.referenced), key, &env)?;
        if command.trim().is_empty() {
            return Err(self.invalid(&v.referenced, key, "empty command".into()));
        }
        Ok(command)
    }

    fn duration(
        &self,
        v: &Option<Spanned<String>>,
        key: &'static str,
        default_secs: u64,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(Duration::from_secs(default_secs)),
            Some(v) => {
                parse_duration(v.value.trim()).map_err(|m| self.invalid(&v.referenced, key, m))
            }
        }
    }

    fn call(
        &self,
        c: FileCall,
        key: &'static str,
        timeout: Duration,
    ) -> Result<HttpCall, ConfigError> {
        let url = self.string(&c.url, key)?;
        match url::Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            // The URL may hold a token: the message does not quote it.
            _ => {
                return Err(self.invalid(
                    &c.url.referenced,
                    key,
                    "`url` is not an http:// or https:// URL".into(),
                ));
            }
        }
        let method = match &c.method {
            Some(m) => {
                let m = m.value.trim().to_ascii_uppercase();
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(self.invalid(
                        &c.method.as_ref().expect("set").referenced,
                        key,
                        format!("`{m}` is not an HTTP method"),
                    ));
                }
                m
            }
            None => "POST".into(),
        };
        let mut headers = Vec::new();
        for (name, value) in c.headers.unwrap_or_default() {
            if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(self.invalid(
                    &value.referenced,
                    key,
                    format!("`{name}` is not a valid header name"),
                ));
            }
            headers.push((name, Secret::new(self.string(&value, key)?)));
        }
        let expect_status = match &c.status {
            None => None,
            Some(s) => Some(match s.value.0.parse::<u16>() {
                Ok(n) if (100..600).contains(&n) => n,
                _ => {
                    return Err(self.invalid(
                        &s.referenced,
                        key,
                        format!("`{}` is not an HTTP status code", s.value.0),
                    ));
                }
            }),
        };
        Ok(HttpCall {
            request: crate::http::Request {
                method,
                url: Secret::new(url.trim()),
                headers,
                body: c.body.as_ref().map(|b| self.string(b, key)).transpose()?,
                timeout,
            },
            expect_status,
        })
    }
}
