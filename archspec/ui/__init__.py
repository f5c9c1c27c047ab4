"""The terminal edge: everything a person reads is printed here, from data the library returns."""
