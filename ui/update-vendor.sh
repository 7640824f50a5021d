#!/bin/sh
# Reproduces ui/assets/vendor/ from the npm registry: installs the exact versions recorded in
# package-lock.json (npm ci) and copies the built dist files the UI embeds. Run from anywhere;
# needs node and npm. To move to a newer uPlot: `npm install uplot@X.Y.Z` here, then run this.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
cp node_modules/uplot/dist/uPlot.iife.min.js assets/vendor/uPlot.iife.min.js
cp node_modules/uplot/dist/uPlot.min.css assets/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE assets/vendor/uPlot.LICENSE
rm -rf node_modules
echo "vendored uplot $(node -p 'require("./package-lock.json").packages["node_modules/uplot"].version')"
