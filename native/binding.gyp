{
  "targets": [
    {
      "target_name": "cachegate_deflate",
      "sources": ["deflate.c"],
      "cflags": ["-O2", "-std=c11", "-Wall"],
      "libraries": [
        "<!(for f in /usr/lib/x86_64-linux-gnu/libdeflate.a /usr/lib/aarch64-linux-gnu/libdeflate.a /usr/lib/libdeflate.a; do [ -e $f ] && echo $f && break; done)",
        "<!(for f in /usr/lib/x86_64-linux-gnu/libz.a /usr/lib/aarch64-linux-gnu/libz.a /usr/lib/libz.a; do [ -e $f ] && echo $f && break; done)"
      ],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,-Bsymbolic"]
    }
  ]
}
