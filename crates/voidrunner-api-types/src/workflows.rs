//! Wire types of the `workflows` endpoints.
