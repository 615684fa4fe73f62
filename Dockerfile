# Trail's container image. Nothing is pulled: the image is FROM scratch,
# holding the static binary, CA certificates, a passwd naming the non-root
# user trail (10001) and the data directory, which is a volume. Build the
# tree first, then the image:
#
#	make rootfs                  # dist/rootfs (packaging/rootfs.sh)
#	docker build -t trail .
#	docker run -p 8080:8080 -v trail-data:/var/lib/trail \
#		-e TRAIL_PUBLIC_URL=https://audit.example.com trail
#
# Time zones come from the binary (time/tzdata). docs/OPERATIONS.md.
FROM scratch
COPY dist/rootfs/ /
COPY --chown=10001:10001 dist/rootfs/var/lib/trail/ /var/lib/trail/
USER 10001:10001
ENV TRAIL_DATA_DIR=/var/lib/trail
ENV TRAIL_ADDR=0.0.0.0:8080
VOLUME ["/var/lib/trail"]
EXPOSE 8080
ENTRYPOINT ["/usr/bin/trail"]
CMD ["serve"]
