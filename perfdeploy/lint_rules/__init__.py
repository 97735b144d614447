"""perfdeploy's house rules, written as cfn-lint rules (one per file) and loaded with append_rules."""
