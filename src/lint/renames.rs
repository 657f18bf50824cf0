//! What the run renamed so far. A statement after `ALTER TABLE a RENAME TO
//! b` (or a renamed column or schema) is about an object the database
//! still knows by its first name, and its facts (size, column type, a
//! validated check) are under that name: the checker asks for and looks up
//! every object by its first name, which for a table this run creates is
//! the name it was created under.

use std::collections::HashMap;

use pg_query::protobuf::{ObjectType, RenameStmt};

use super::facts::TableName;

/// A table as the run resolves it, however it is spelt: (schema, name),
/// an unqualified name in the first schema of the `search_path`.
pub type Resolved = (String, String);

/// `t` resolved with `schema` as the first schema of the `search_path`.
pub fn resolve(t: &TableName, schema: &str) -> Resolved {
    (
        t.schema.clone().unwrap_or_else(|| schema.to_owned()),
        t.name.clone(),
    )
}

/// The renames made by the statements read so far.
#[derive(Debug, Default)]
pub struct Renames {
    /// Tables by their name now: the name they were first known by.
    tables: HashMap<Resolved, TableName>,
    /// Columns by (their table's name now, their name now): their first
    /// name.
    columns: HashMap<(Resolved, String), String>,
    /// Schemas by their name now: their first name.
    schemas: HashMap<String, String>,
}

impl Renames {
    /// The name the table `t` (as written, `schema` first in the
    /// `search_path`) was first known by: itself when nothing renamed it.
    pub fn table(&self, t: &TableName, schema: &str) -> TableName {
        let now = resolve(t, schema);
        if let Some(first) = self.tables.get(&now) {
            return first.clone();
        }
        match self.schemas.get(&now.0) {
            Some(first_schema) => TableName {
                schema: Some(first_schema.clone()),
                name: now.1,
            },
            None => t.clone(),
        }
    }

    /// The first name of `t`, when a rename gave it another.
    pub fn renamed(&self, t: &TableName, schema: &str) -> Option<TableName> {
        let first = self.table(t, schema);
        (resolve(&first, schema) != resolve(t, schema)).then_some(first)
    }

    /// The name column `column` of table `t` was first known by.
    pub fn column(&self, t: &TableName, column: &str, schema: &str) -> String {
        self.columns
            .get(&(resolve(t, schema), column.to_owned()))
            .cloned()
            .unwrap_or_else(|| column.to_owned())
    }

    /// Takes in a rename: it holds for the statements after it.
    pub fn apply(&mut self, r: &RenameStmt, schema: &str) {
        match r.rename_type() {
            ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectForeignTable => {
                let Some(rv) = &r.relation else { return };
                let old = TableName::of(rv);
                let first = self.table(&old, schema);
                let from = resolve(&old, schema);
                let to = (from.0.clone(), r.newname.clone());
                self.tables.remove(&from);
                self.tables.insert(to.clone(), first);
                self.columns = std::mem::take(&mut self.columns)
                    .into_iter()
                    .map(|((t, c), first)| ((if t == from { to.clone() } else { t }, c), first))
                    .collect();
            }
            ObjectType::ObjectColumn => {
                let Some(rv) = &r.relation else { return };
                let table = resolve(&TableName::of(rv), schema);
                let first = self
                    .columns
                    .remove(&(table.clone(), r.subname.clone()))
                    .unwrap_or_else(|| r.subname.clone());
                self.columns.insert((table, r.newname.clone()), first);
            }
            ObjectType::ObjectSchema => {
                let (old, new) = (&r.subname, &r.newname);
                let first = self.schemas.remove(old).unwrap_or_else(|| old.clone());
                self.schemas.insert(new.clone(), first);
                let moved = |(s, n): Resolved| if s == *old { (new.clone(), n) } else { (s, n) };
                self.tables = std::mem::take(&mut self.tables)
                    .into_iter()
                    .map(|(now, first)| (moved(now), first))
                    .collect();
                self.columns = std::mem::take(&mut self.columns)
                    .into_iter()
                    .map(|((t, c), first)| ((moved(t), c), first))
                    .collect();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renames(sql: &str) -> Renames {
        let mut out = Renames::default();
        let parsed = pg_query::parse(sql, 0).unwrap();
        for s in &parsed.protobuf.stmts {
            if let Some(pg_query::NodeEnum::RenameStmt(r)) =
                s.stmt.as_ref().and_then(|n| n.node.as_ref())
            {
                out.apply(r, "public");
            }
        }
        out
    }

    fn name(schema: Option<&str>, name: &str) -> TableName {
        TableName {
            schema: schema.map(str::to_owned),
            name: name.into(),
        }
    }

    #[test]
    fn every_later_name_leads_back_to_the_first() {
        let r = renames(
            "ALTER TABLE posts RENAME TO articles; \
             ALTER TABLE public.articles RENAME COLUMN body TO text; \
             ALTER TABLE articles RENAME TO entries; \
             ALTER TABLE entries RENAME COLUMN text TO content;",
        );
        assert_eq!(
            r.table(&name(None, "entries"), "public"),
            name(None, "posts")
        );
        assert_eq!(
            r.table(&name(Some("public"), "entries"), "public"),
            name(None, "posts")
        );
        assert_eq!(
            r.column(&name(None, "entries"), "content", "public"),
            "body"
        );
        assert_eq!(r.renamed(&name(None, "posts"), "public"), None);
        // Another schema's table of the same name is another table.
        assert_eq!(r.renamed(&name(Some("audit"), "entries"), "public"), None);
    }

    #[test]
    fn a_renamed_schema_keeps_its_tables_first_names() {
        let r = renames(
            "ALTER TABLE app.users RENAME TO accounts; \
             ALTER SCHEMA app RENAME TO core; \
             ALTER TABLE core.accounts RENAME COLUMN mail TO email;",
        );
        assert_eq!(
            r.table(&name(Some("core"), "accounts"), "public"),
            name(Some("app"), "users")
        );
        assert_eq!(
            r.table(&name(Some("core"), "orders"), "public"),
            name(Some("app"), "orders")
        );
        assert_eq!(
            r.column(&name(Some("core"), "accounts"), "email", "public"),
            "mail"
        );
    }
}
