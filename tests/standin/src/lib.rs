//! A stand-in WhatsApp server for tests (work in progress).
