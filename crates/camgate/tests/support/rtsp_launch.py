#!/usr/bin/python3
"""A camera that is not ours, with a pipeline the test chooses: GStreamer's RTSP server serving
one launch line on 127.0.0.1 at /cam, without authentication (e.g. an encoder with B-frames,
which tests/support/rtsp_camera.py's fixed pipelines never produce).

Usage: rtsp_launch.py "( videotestsrc ! x264enc ! rtph264pay name=pay0 pt=96 )"
Prints "PORT <n>" once listening on a free port; runs until stdin closes.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(sys.argv[1])
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("ERROR cannot listen", flush=True)
        sys.exit(1)
    print(f"PORT {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    # The test holds stdin open; when it goes (test ended or crashed), so does the camera.
    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, lambda s, _c: bool(s.readline()) or loop.quit())
    loop.run()


if __name__ == "__main__":
    main()
