"""DynamoDB stores, one per table of DESIGN.md."""
