//! The camera simulator: a synthetic picture with the wall clock burned in, encoded to H.264
//! in-process, served to any RTSP client as `/cam1 ... /camN`.
