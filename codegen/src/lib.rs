//! rtbus codegen.
