#!/usr/bin/python3
"""A camera that is not ours: GStreamer's RTSP server serving H.264 for camgate's tests.

Usage: rtsp_camera.py [--port N] [--user U --password P] [--auth digest|basic|none]
                      [--mount /cam] [--width 320 --height 240 --fps 25] [--codec h264|h265]
                      [--udp-only]
                      [--audio none|aac|pcma|pcmu|opus] [--audio-rate 48000]

With --audio the media has a second stream (pay1) of a live test tone: AAC (voaacenc,
mpeg4-generic, pt 97), G.711 A-law or mu-law (8 kHz, pt 8 / 0) or Opus (pt 98).

Prints "PORT <n>" once listening (with --port 0 the OS picks a free port), then one line
per event ("CLIENT_CONNECTED", "SESSION_NEW", "SESSION_REMOVED").
Commands on stdin, one per line:
  sessions  -> "SESSIONS active=<n> total=<m> clients=<c> refused_setups=<r>" (server-side
               counts: RTSP sessions now and ever, connections ever, SETUPs answered 461)
  stall     -> stop sending RTP while keeping every connection open
  resume    -> send again
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--auth", default="digest", choices=["digest", "basic", "none"])
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--codec", default="h264", choices=["h264", "h265"])
    # Frames between IDRs (default: one per second, as most cameras are set up).
    ap.add_argument("--gop", type=int, default=0)
    # Offer RTP over UDP only, as some cameras do: a SETUP asking for TCP interleaved is
    # answered 461 Unsupported Transport.
    ap.add_argument("--udp-only", action="store_true")
    ap.add_argument("--audio", default="none", choices=["none", "aac", "pcma", "pcmu", "opus"])
    # AAC only: G.711 is 8 kHz by definition, Opus always 48 kHz on the wire.
    ap.add_argument("--audio-rate", type=int, default=48000)
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    # The tone goes through a valve too, so "stall" silences the whole camera.
    tone = "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
    audio = {
        "none": "",
        "aac": f"{tone}audio/x-raw,rate={args.audio_rate},channels=1 ! valve name=a drop=false ! "
        "voaacenc ! rtpmp4gpay name=pay1 pt=97",
        "pcma": f"{tone}audio/x-raw,rate=8000,channels=1 ! valve name=a drop=false ! "
        "alawenc ! rtppcmapay name=pay1 pt=8",
        "pcmu": f"{tone}audio/x-raw,rate=8000,channels=1 ! valve name=a drop=false ! "
        "mulawenc ! rtppcmupay name=pay1 pt=0",
        "opus": f"{tone}audio/x-raw,rate=48000,channels=1 ! valve name=a drop=false ! "
        "opusenc ! rtpopuspay name=pay1 pt=98",
    }[args.audio]

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true ! "
        f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 ! "
        "valve name=v drop=false ! "
        + (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop or args.fps} ! "
            "video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=1 "
            if args.codec == "h264"
            # Closed GOPs (an IDR every second), as cameras send: x265 defaults to open GOPs
            # whose CRA pictures retina does not mark as random access points.
            else f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop or args.fps} "
            "option-string=open-gop=0 ! "
            "video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=1 "
        )
        + audio
        + " )"
    )
    # One pipeline for all clients, as a camera has one encoder.
    factory.set_shared(True)
    if args.udp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.UDP_MCAST)
    valves = []

    def on_media(_factory, media):
        for name in ("v", "a"):
            v = media.get_element().get_by_name(name)
            if v is not None:
                valves.append(v)

    factory.connect("media-configure", on_media)

    if args.auth != "none" and args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        if args.auth == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password, token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        role = Gst.Structure.from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
        factory.add_role_from_structure(role)

    server.get_mount_points().add_factory(args.mount, factory)

    total = [0]
    clients = [0]
    refused = [0]
    pool = server.get_session_pool()

    def on_new_session(_client, _session):
        total[0] += 1
        say("SESSION_NEW")

    # A SETUP asking only for TCP interleaved, which a UDP-only camera refuses (461) itself.
    def on_pre_setup(_client, ctx):
        res, transport = ctx.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
        offered = (transport or "").upper() if res == GstRtsp.RTSPResult.OK else ""
        if args.udp_only and "/TCP" in offered and "UDP" not in offered:
            refused[0] += 1
            say("SETUP_REFUSED")
        return GstRtsp.RTSPStatusCode.OK

    def on_client(_server, client):
        clients[0] += 1
        say("CLIENT_CONNECTED")
        client.connect("new-session", on_new_session)
        client.connect("pre-setup-request", on_pre_setup)

    server.connect("client-connected", on_client)
    pool.connect("session-removed", lambda _p, _s: say("SESSION_REMOVED"))

    if server.attach(None) == 0:
        say("ERROR cannot listen")
        sys.exit(1)
    say(f"PORT {server.get_bound_port()}")

    # Expired sessions (a client that vanished without TEARDOWN) are only removed by cleanup.
    def cleanup():
        pool.cleanup()
        return True

    GLib.timeout_add(500, cleanup)
    loop = GLib.MainLoop()

    def on_stdin(source, _cond):
        line = source.readline()
        if not line:
            loop.quit()
            return False
        cmd = line.strip()
        if not cmd:
            pass
        elif cmd == "sessions":
            say(
                f"SESSIONS active={pool.get_n_sessions()} total={total[0]} "
                f"clients={clients[0]} refused_setups={refused[0]}"
            )
        elif cmd in ("stall", "resume"):
            for v in valves:
                v.set_property("drop", cmd == "stall")
            say(f"OK {cmd} valves={len(valves)}")
        else:
            say(f"ERROR unknown command {cmd}")
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    loop.run()


if __name__ == "__main__":
    main()
