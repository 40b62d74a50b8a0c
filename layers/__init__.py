"""Campaign layers: declarations, schema, migrations, rules and their SQL."""
