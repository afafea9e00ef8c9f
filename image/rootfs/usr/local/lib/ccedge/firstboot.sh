#!/bin/sh
# ccedge first boot: look for a provisioning file on removable media and apply it.
set -u
# The unit's data dir: the binary extracts its runtime there (without it, under the cwd: /var/runtime).
export CCEDGE_DATA_DIR=/var/lib/ccedge
log=/var/log/ccedge/firstboot.log
mkdir -p /var/log/ccedge
found=""
# USB sticks may not be mounted yet on a headless box: mount any vfat/exfat/ext partition labelled
# CCEDGE read-only, then look in the usual places.
if [ -e /dev/disk/by-label/CCEDGE ]; then
  mkdir -p /run/ccedge-media && mount -o ro /dev/disk/by-label/CCEDGE /run/ccedge-media 2>/dev/null
fi
for f in /run/ccedge-media/ccedge-provision.yaml /media/*/ccedge-provision.yaml /run/media/*/*/ccedge-provision.yaml /boot/ccedge-provision.yaml /boot/firmware/ccedge-provision.yaml; do
  if [ -f "$f" ]; then found="$f"; break; fi
done
if [ -z "$found" ]; then
  echo "ccedge: not provisioned. Log in on the console and run: sudo ccedge provision" | tee -a "$log"
  echo "        (or put ccedge-provision.yaml on a USB stick labelled CCEDGE and reboot)" | tee -a "$log"
  exit 0
fi
echo "ccedge: provisioning from $found" | tee -a "$log"
if /opt/ccedge/committed/ccedge provision --from "$found" >>"$log" 2>&1; then
  chown -R ccedge:ccedge /var/lib/ccedge
  echo "ccedge: provisioned; starting ccedge.service" | tee -a "$log"
  umount /run/ccedge-media 2>/dev/null || true
  systemctl --no-block start ccedge.service
else
  echo "ccedge: provisioning FAILED, see $log" | tee -a "$log"
  tail -n 20 "$log"
  exit 1
fi
