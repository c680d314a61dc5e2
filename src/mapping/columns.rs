//! The mapping against a table's columns from PostgreSQL's `information_schema`: what
//! `scim-gateway check` reports for a `kind = "postgres"` target, as [`super::check`] does
//! against an LDAP subschema.

use super::{Entity, Finding, GroupMapping, UserMapping};
use crate::config::Deactivation;
use crate::directory::records::Catalog;

/// PostgreSQL's system column that stands for a row's version.
const SYSTEM_VERSION: &str = "xmin";

impl Entity {
    /// Columns that do not exist, NOT NULL columns a create leaves empty, and meta columns
    /// of a type the gateway cannot read as a time. `own` are columns the gateway writes
    /// itself (the deactivation column).
    fn check_columns(&self, catalog: &Catalog, own: &[&str]) -> Vec<Finding> {
        let kind = format!("[{}s]", self.resource_type.to_ascii_lowercase());
        let t = &catalog.table;
        if catalog.columns.is_empty() {
            return vec![Finding::Error(format!(
                "{kind} table {t} does not exist, or the gateway's database user may not read it"
            ))];
        }
        let column = |c: &str| catalog.columns.iter().find(|x| x.name == c);
        let mut found = Vec::new();
        let rules = self.rules.iter().map(|r| r.ldap.as_str());
        let computed = self.computed.iter().map(|c| c.ldap.as_str());
        let meta = [&self.id_attr, &self.created_attr, &self.modified_attr, &self.version_attr].map(String::as_str);
        let extra = catalog.extra.iter().map(String::as_str);
        let used = rules.chain(computed).chain(meta).chain(own.iter().copied()).chain(extra);
        let mut reported = Vec::new();
        for c in used.filter(|c| *c != SYSTEM_VERSION && column(c).is_none()) {
            if !reported.contains(&c) {
                reported.push(c);
                found.push(Finding::Error(format!("{kind} column {t}.{c} does not exist")));
            }
        }
        let written_on_create: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.direction.writes())
            .map(|r| r.ldap.as_str())
            .chain(self.computed.iter().map(|c| c.ldap.as_str()))
            .chain(own.iter().copied())
            .collect();
        for c in catalog.columns.iter().filter(|c| !c.nullable && !c.has_default) {
            let rule = self.rules.iter().find(|r| r.ldap == c.name && r.direction.writes());
            match rule {
                None if !written_on_create.contains(&c.name.as_str()) => found.push(Finding::Error(format!(
                    "{kind} column {t}.{} is NOT NULL without a default and no rule writes it: every create would fail",
                    c.name
                ))),
                Some(r) if !r.required && r.steps.default.is_none() => found.push(Finding::Warning(format!(
                    "{kind} column {t}.{} is NOT NULL without a default: a create without {} fails (required = true or a default says so up front)",
                    c.name, r.target
                ))),
                _ => {}
            }
        }
        for c in [&self.created_attr, &self.modified_attr] {
            if let Some(col) =
                column(c).filter(|col| !col.data_type.starts_with("timestamp") && col.data_type != "date")
            {
                found.push(Finding::Error(format!(
                    "{kind} column {t}.{c} holds {}: meta.created / meta.lastModified need a timestamp column",
                    col.data_type
                )));
            }
        }
        found
    }
}

impl UserMapping {
    pub fn check_columns(&self, catalog: &Catalog) -> Vec<Finding> {
        let own: Vec<&str> = match &self.deactivation {
            Deactivation::Attribute { attribute, .. } => vec![attribute.as_str()],
            _ => Vec::new(),
        };
        let mut found = self.entity_check(catalog, &own);
        if let Deactivation::Attribute { attribute, active_value: None, .. } = &self.deactivation {
            found.push(Finding::Warning(format!(
                "[users] deactivation column {attribute} has no active_value: reactivating writes NULL"
            )));
        }
        found
    }

    fn entity_check(&self, catalog: &Catalog, own: &[&str]) -> Vec<Finding> {
        std::ops::Deref::deref(self).check_columns(catalog, own)
    }
}

impl GroupMapping {
    pub fn check_columns(&self, catalog: &Catalog) -> Vec<Finding> {
        std::ops::Deref::deref(self).check_columns(catalog, &[])
    }
}

/// The membership table: it exists and has the two configured columns.
pub fn check_membership(catalog: &Catalog) -> Vec<Finding> {
    let t = &catalog.table;
    if catalog.columns.is_empty() {
        return vec![Finding::Error(format!(
            "[groups] membership table {t} does not exist, or the gateway's database user may not read it"
        ))];
    }
    let missing = catalog.extra.iter().filter(|c| !catalog.columns.iter().any(|x| &x.name == *c));
    missing.map(|c| Finding::Error(format!("[groups] membership column {t}.{c} does not exist"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::records::{Column, Kind};

    fn col(name: &str, data_type: &str, nullable: bool, has_default: bool) -> Column {
        Column { name: name.into(), data_type: data_type.into(), nullable, has_default }
    }

    fn preset_users() -> UserMapping {
        let text = include_str!("../../presets/postgres.toml")
            .replace("${SCIM_GATEWAY_TOKEN}", "t")
            .replace("${SCIM_GATEWAY_PG_PASSWORD}", "p");
        let loaded = crate::config::Loaded::parse("gateway.toml", text).unwrap();
        UserMapping::compile(&loaded.config.users).unwrap()
    }

    fn catalog(extra_columns: Vec<Column>) -> Catalog {
        let mut columns = vec![
            col("id", "uuid", false, true),
            col("user_name", "text", false, false),
            col("created_at", "timestamp with time zone", false, true),
            col("updated_at", "timestamp with time zone", false, true),
            col("active", "boolean", false, true),
            col("password_hash", "text", true, false),
        ];
        for c in [
            "external_id",
            "given_name",
            "family_name",
            "display_name",
            "email",
            "title",
            "department",
            "employee_number",
        ] {
            columns.push(col(c, "text", true, false));
        }
        columns.extend(extra_columns);
        Catalog { kind: Some(Kind::Users), table: "users".into(), columns, extra: vec!["password_hash".into()] }
    }

    #[test]
    fn the_preset_matches_its_schema() {
        assert_eq!(preset_users().check_columns(&catalog(vec![])), vec![]);
    }

    #[test]
    fn reports_missing_columns_not_null_gaps_and_types() {
        let mut cat = catalog(vec![col("cost_center", "text", false, false)]);
        cat.columns.retain(|c| c.name != "title");
        cat.columns.iter_mut().filter(|c| c.name == "created_at").for_each(|c| c.data_type = "text".into());
        let found: Vec<String> = preset_users().check_columns(&cat).iter().map(ToString::to_string).collect();
        assert!(found.iter().any(|f| f.contains("users.title does not exist")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("users.cost_center is NOT NULL")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("users.created_at holds text")), "{found:?}");
        let empty = Catalog { columns: vec![], ..catalog(vec![]) };
        assert!(preset_users().check_columns(&empty)[0].to_string().contains("does not exist"));
    }
}
