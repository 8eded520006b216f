import type { z } from "zod";
import { TilesOptions } from "./local.js";

export const TilesSection = TilesOptions;
export type TilesSection = z.infer<typeof TilesSection>;

export const TILES_EXAMPLE = "tiles: { originUrl: http://honua:8080, accessLog: ./access.log, redisKey: \"{prefix}tile:{layerId}:{z}:{row}:{col}\" }";
