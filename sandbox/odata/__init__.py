"""One server-side OData layer for both mock services; dialects keep the differences in one place."""
