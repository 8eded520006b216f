export declare const STAMP: string;
/** True when dist/ was built after the last change to the sources it is compiled from. */
export declare function distIsFresh(root: string): boolean;
