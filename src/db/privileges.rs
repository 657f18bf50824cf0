//! What the connected role may do, read from the catalogue once, and the
//! exact `GRANT` or `ALTER ROLE` each capability is missing.
//!
//! A managed platform's deploy role is no superuser: it owns the database,
//! has `CREATEDB`, `CREATEROLE` (with `ADMIN OPTION` on the application's
//! roles from PostgreSQL 16) and `pg_signal_backend`. Each rollback needs a
//! known subset of that, so preflight checks the subset the chosen rollback
//! needs and names what is missing, instead of failing mid-rollback.
//! <https://www.postgresql.org/docs/current/sql-createdatabase.html>,
//! <https://www.postgresql.org/docs/current/sql-alterdatabase.html>,
//! <https://www.postgresql.org/docs/16/sql-createrole.html>

use tokio_postgres::Client;

use super::{DbError, quote_ident};

/// The connected role's attributes and memberships that snapguard's
/// database-level work depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The server's major version.
    pub major: u32,
    /// `current_user`.
    pub role: String,
    /// `rolsuper`: every check below passes.
    pub superuser: bool,
    /// `rolcreatedb`: create (clone, restore into) and rename databases.
    pub createdb: bool,
    /// `rolcreaterole`: change other roles' `LOGIN` (the fence).
    pub createrole: bool,
    /// Has the privileges of the database's owner: rename it, change
    /// `ALLOW_CONNECTIONS`, use it as a `TEMPLATE`.
    pub owns_database: bool,
    /// The database's owner, to name in a missing grant.
    pub database_owner: String,
    /// May hand a database to that owner (`ALTER DATABASE … OWNER TO`): a
    /// member of it before 16, `SET` on it from 16.
    pub can_become_owner: bool,
    /// A member of `pg_signal_backend`: may end other roles' sessions.
    pub signal_backend: bool,
    /// A member of `pg_read_all_settings`: sees `data_directory`.
    pub read_all_settings: bool,
}

/// One capability the role lacks for a purpose, and how to grant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What it is, for example ``CREATEDB``.
    pub what: String,
    /// The statement a superuser runs to grant it.
    pub grant: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (`{}`)", self.what, self.grant)
    }
}

/// Renders a list of [`Missing`] as one `a; b` fragment.
pub fn describe(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(Missing::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Capabilities {
    /// Reads the connected role's capabilities over `database`, on a server
    /// of `major` (`SET` membership exists from 16).
    pub async fn read(client: &Client, database: &str, major: u32) -> Result<Self, DbError> {
        let become_owner = if major >= 16 { "SET" } else { "MEMBER" };
        let sql = format!(
            "SELECT current_user::text, r.rolsuper, r.rolcreatedb, r.rolcreaterole, \
                    pg_has_role(d.datdba, 'USAGE'), pg_get_userbyid(d.datdba), \
                    pg_has_role(d.datdba, '{become_owner}'), \
                    pg_has_role('pg_signal_backend', 'MEMBER'), \
                    pg_has_role('pg_read_all_settings', 'MEMBER') \
             FROM pg_roles r, pg_database d \
             WHERE r.rolname = current_user AND d.datname = $1"
        );
        let row = client
            .query_one(&sql, &[&database])
            .await
            .map_err(DbError::query(format!(
                "reading what the role may do on `{database}`"
            )))?;
        Ok(Capabilities {
            major,
            role: row.get(0),
            superuser: row.get(1),
            createdb: row.get(2),
            createrole: row.get(3),
            owns_database: row.get(4),
            database_owner: row.get(5),
            can_become_owner: row.get(6),
            signal_backend: row.get(7),
            read_all_settings: row.get(8),
        })
    }

    /// What both rollbacks that replace the database need, the local clone
    /// and its swap as much as a store restore and its swap: `CREATEDB` and
    /// the owner's privileges (a non-template database is a `TEMPLATE` to
    /// its owner only; renaming and `ALLOW_CONNECTIONS` are the owner's
    /// too), and handing the new database to the owner.
    pub fn missing_for_swap(&self, database: &str) -> Vec<Missing> {
        if self.superuser {
            return Vec::new();
        }
        let role = quote_ident(&self.role);
        let mut missing = Vec::new();
        if !self.createdb {
            missing.push(Missing {
                what: "`CREATEDB`".into(),
                grant: format!("ALTER ROLE {role} CREATEDB"),
            });
        }
        if !self.owns_database {
            missing.push(Missing {
                what: format!("ownership of `{database}`"),
                grant: format!("ALTER DATABASE {} OWNER TO {role}", quote_ident(database)),
            });
        } else if !self.can_become_owner {
            let owner = quote_ident(&self.database_owner);
            missing.push(if self.major >= 16 {
                Missing {
                    what: format!("`SET` on the owner `{}`", self.database_owner),
                    grant: format!("GRANT {owner} TO {role} WITH SET TRUE"),
                }
            } else {
                Missing {
                    what: format!("membership in the owner `{}`", self.database_owner),
                    grant: format!("GRANT {owner} TO {role}"),
                }
            });
        }
        missing
    }

    /// What the fence needs over its roles: to change their `LOGIN`
    /// (`CREATEROLE`, and from 16 `ADMIN OPTION` on each, as
    /// [`admin_option_on`] read into `admin_on`) and to end their sessions
    /// (`pg_signal_backend`).
    pub fn missing_for_fence(&self, admin_on: &[(String, bool)]) -> Vec<Missing> {
        if self.superuser {
            return Vec::new();
        }
        let role = quote_ident(&self.role);
        let mut missing = Vec::new();
        if !self.createrole {
            missing.push(Missing {
                what: "`CREATEROLE`".into(),
                grant: format!("ALTER ROLE {role} CREATEROLE"),
            });
        }
        if self.major >= 16 {
            for (fenced, admin) in admin_on {
                if !admin {
                    missing.push(Missing {
                        what: format!("`ADMIN OPTION` on `{fenced}` (PostgreSQL 16 and later)"),
                        grant: format!("GRANT {} TO {role} WITH ADMIN OPTION", quote_ident(fenced)),
                    });
                }
            }
        }
        if !self.signal_backend {
            missing.push(Missing {
                what: "membership in `pg_signal_backend`".into(),
                grant: format!("GRANT pg_signal_backend TO {role}"),
            });
        }
        missing
    }
}

/// Whether the connected role holds `ADMIN OPTION` on each of `roles`
/// (always true for a superuser).
pub async fn admin_option_on(
    client: &Client,
    roles: &[String],
) -> Result<Vec<(String, bool)>, DbError> {
    let mut out = Vec::with_capacity(roles.len());
    for role in roles {
        let row = client
            .query_one(
                "SELECT pg_has_role($1, 'MEMBER WITH ADMIN OPTION')",
                &[role],
            )
            .await
            .map_err(DbError::query(format!(
                "reading the admin option on `{role}`"
            )))?;
        out.push((role.clone(), row.get(0)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployer() -> Capabilities {
        Capabilities {
            major: 16,
            role: "deployer".into(),
            superuser: false,
            createdb: true,
            createrole: true,
            owns_database: true,
            database_owner: "deployer".into(),
            can_become_owner: true,
            signal_backend: true,
            read_all_settings: false,
        }
    }

    #[test]
    fn a_managed_deploy_role_needs_nothing_more() {
        let role = deployer();
        assert!(role.missing_for_swap("shop").is_empty());
        let admin = vec![("shop_app".to_owned(), true)];
        assert!(role.missing_for_fence(&admin).is_empty());
    }

    #[test]
    fn each_missing_capability_names_its_grant() {
        let role = Capabilities {
            createdb: false,
            owns_database: false,
            database_owner: "postgres".into(),
            signal_backend: false,
            ..deployer()
        };
        let clone = describe(&role.missing_for_swap("shop"));
        assert!(
            clone.contains("`ALTER ROLE \"deployer\" CREATEDB`"),
            "{clone}"
        );
        assert!(
            clone.contains("`ALTER DATABASE \"shop\" OWNER TO \"deployer\"`"),
            "{clone}"
        );
        let no_admin = vec![("shop_app".to_owned(), false)];
        let fence = describe(&role.missing_for_fence(&no_admin));
        assert!(
            fence.contains("`GRANT \"shop_app\" TO \"deployer\" WITH ADMIN OPTION`"),
            "{fence}"
        );
        assert!(
            fence.contains("`GRANT pg_signal_backend TO \"deployer\"`"),
            "{fence}"
        );
        // Before 16, CREATEROLE alone may change a non-superuser role.
        let role15 = Capabilities { major: 15, ..role };
        let fence15 = describe(&role15.missing_for_fence(&no_admin));
        assert!(!fence15.contains("ADMIN OPTION"), "{fence15}");
    }

    #[test]
    fn a_member_of_the_owner_needs_set_on_it_to_hand_a_database_back() {
        let role = Capabilities {
            database_owner: "shop_owner".into(),
            can_become_owner: false,
            ..deployer()
        };
        let missing = describe(&role.missing_for_swap("shop"));
        assert!(
            missing.contains("`GRANT \"shop_owner\" TO \"deployer\" WITH SET TRUE`"),
            "{missing}"
        );
        let role15 = Capabilities { major: 15, ..role };
        let missing = describe(&role15.missing_for_swap("shop"));
        assert!(
            missing.contains("`GRANT \"shop_owner\" TO \"deployer\"`"),
            "{missing}"
        );
    }

    #[test]
    fn a_superuser_lacks_nothing() {
        let role = Capabilities {
            superuser: true,
            createdb: false,
            createrole: false,
            owns_database: false,
            signal_backend: false,
            ..deployer()
        };
        assert!(role.missing_for_swap("shop").is_empty());
        assert!(role.missing_for_fence(&[("a".into(), false)]).is_empty());
    }
}
