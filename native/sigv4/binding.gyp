{
  "targets": [
    {
      "target_name": "cachegate_sigv4",
      "sources": ["sigv4.c", "malloc.c", "accept.c"],
      "cflags": ["-O2", "-std=c11", "-Wall"]
    }
  ]
}
