//! SKELETON: to be written (helper task).
