//! Wire types of the `repositories` endpoints.
