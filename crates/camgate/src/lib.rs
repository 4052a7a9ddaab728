//! camgate: one service between RTSP cameras and the people and programs that watch them.
//! See docs/architecture.md for how the modules fit together.
