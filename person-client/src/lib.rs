//! The typed client of the Person API (work in progress: see issue 7).
